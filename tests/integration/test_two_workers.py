"""Two workers in one consumer group: each owns some pairs, and either answers for any."""

from __future__ import annotations

import re
from decimal import Decimal

import orjson

from tests.integration.conftest import Deployment, Worker, wait_until

PAIRS = [("IN", "RU"), ("IN", "AE"), ("RU", "CN"), ("DE", "FR"), ("US", "JP"), ("BR", "ZA"),
         ("FR", "IT"), ("KE", "NG")]


def trade_per_pair() -> tuple[list[tuple[str, bytes | None, bytes]], dict[str, Decimal]]:
    """One trade event per pair of ``PAIRS``, and each pair's 2024 total."""
    records, expected = [], {}
    for number, (reporter, partner) in enumerate(PAIRS):
        amount = Decimal(1000 + number)
        event = {"event_id": f"two-{number}", "occurred_at": "2024-06-01", "reporter": reporter,
                 "partner": partner, "direction": "import", "amount": str(amount),
                 "currency": "USD"}
        records.append(("trade-transactions", None, orjson.dumps(event)))
        expected["-".join(sorted((reporter, partner)))] = amount
    return records, expected


def local_pairs(worker: Worker) -> list[str]:
    """Pairs a worker lists from its own tables (a forwarded request is not gathered)."""
    rows = worker.get("/totals/", params={"period": "2024", "sector": "trade",
                                          "measure": "value_usd"},
                      headers={"X-Tracker-Forwarded": "1"}).json()["items"]
    return [row["pair"] for row in rows]


def exported_pairs(worker: Worker) -> set[str]:
    """Pairs with a tracker_total_usd series on a worker's /metrics."""
    return {match.group(1) for match in re.finditer(r'^tracker_total_usd\{pair="([^"]+)"',
                                                     worker.get("/metrics").text, re.M)}


def test_a_worker_that_handed_pairs_over_no_longer_lists_them(deployment: Deployment) -> None:
    """Before: the worker that handed partitions over still listed and exported their pairs
    (stale values: the in-memory store keeps what it wrote), so a list view answered two
    rows for such a pair and a dashboard summing workers counted it twice."""
    first, second = deployment.worker("worker-1"), deployment.worker("worker-2")
    first.start()
    records, expected = trade_per_pair()
    deployment.produce(records)
    wait_until(lambda: sorted(local_pairs(first)) == sorted(expected), 60,
               message="the only worker to fold every pair")
    wait_until(lambda: exported_pairs(first) == set(expected), 30,
               message="the only worker to export every pair")
    second.start()  # takes some partitions over: their ledgers now live on the second
    wait_until(lambda: first.ready() and second.ready() and local_pairs(second), 60,
               message="the group to settle with pairs on the second worker")
    wait_until(lambda: not set(local_pairs(first)) & set(local_pairs(second)), 30,
               message="each pair listed by its owner only")
    assert sorted(local_pairs(first) + local_pairs(second)) == sorted(expected)
    assert exported_pairs(first) <= set(local_pairs(first)), "a moved pair is not exported"
    rows = first.get("/totals/", params={"period": "2024", "sector": "trade",
                                         "measure": "value_usd"}).json()["items"]
    assert sorted(row["pair"] for row in rows) == sorted(expected), "one row per pair"


def test_any_worker_answers_any_key(deployment: Deployment) -> None:
    first = deployment.worker("worker-1")
    second = deployment.worker("worker-2")
    first.start()
    second.start()
    records, expected = trade_per_pair()
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
        assert commitment["achieved"] == "1007.0000"
        listing = worker.get("/commitments/").json()["items"]
        assert [item["commitment_id"] for item in listing] == ["ke-ng-1"]
