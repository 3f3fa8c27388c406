"""Two workers in one consumer group: each owns some pairs, and either answers for any."""

from __future__ import annotations

from decimal import Decimal

import orjson

from tests.integration.conftest import Deployment, Worker, wait_until

PAIRS = [("IN", "RU"), ("IN", "AE"), ("RU", "CN"), ("DE", "FR"), ("US", "JP"), ("BR", "ZA"),
         ("FR", "IT"), ("KE", "NG")]


def test_any_worker_answers_any_key(deployment: Deployment) -> None:
    first = deployment.worker("worker-1")
    second = deployment.worker("worker-2")
    first.start()
    second.start()
    records, expected = [], {}
    for number, (reporter, partner) in enumerate(PAIRS):
        amount = Decimal(1000 + number)
        event = {"event_id": f"two-{number}", "occurred_at": "2024-06-01", "reporter": reporter,
                 "partner": partner, "direction": "import", "amount": str(amount),
                 "currency": "USD"}
        records.append(("trade-transactions", None, orjson.dumps(event)))
        expected["-".join(sorted((reporter, partner)))] = amount
    records.append(("commitments", b"c-1", orjson.dumps({
        "event_id": "two-commitment", "occurred_at": "2024-01-01", "commitment_id": "ke-ng-1",
        "action": "declared", "parties": ["NG", "KE"], "sector": "trade",
        "metric": "value_usd", "target": "5000", "basis": "cumulative",
        "period_start": "2024-01-01", "deadline": "2026-12-31", "source": "test"})))
    deployment.produce(records)

    def answers(worker: Worker) -> dict[str, Decimal]:
        rows = worker.get("/totals/", params={"period": "2024", "sector": "trade",
                                                         "measure": "value_usd"}).json()
        found = {row["pair"]: Decimal(row["value"]) for row in rows["items"]}
        print(worker.url, found)
        return found

    for worker in (first, second):
        wait_until(lambda w=worker: answers(w) == expected, 60,
                   message=f"{worker.url} to list every pair")
    local_only = {"X-Tracker-Forwarded": "1"}
    owned = {w.url: {r["pair"] for r in w.get("/totals/", params={"period": "2024"},
                                                headers=local_only).json()["items"]}
             for w in (first, second)}
    assert all(owned.values()), f"both workers should own some pairs: {owned}"
    assert not set.intersection(*owned.values()), "a pair is owned by one worker only"
    for worker in (first, second):
        for pair, amount in expected.items():
            rows = worker.get("/totals/", params={"pair": pair, "period": "2024-06",
                                                  "sector": "trade"}).json()["items"]
            assert [Decimal(r["value"]) for r in rows] == [amount], (worker.url, pair)
        commitment = worker.get("/commitments/ke-ng-1/").json()
        assert commitment["achieved"] == "1007.00"
        listing = worker.get("/commitments/").json()["items"]
        assert [item["commitment_id"] for item in listing] == ["ke-ng-1"]
