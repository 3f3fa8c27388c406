"""Provenance, time travel, settlement currency and history, on the real broker, with the
expected figures from the independent fold of the sample file."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.conftest import Worker, wait_until
from tests.integration.independent_fold import Expected

BN = Decimal(10) ** 9


def test_time_travel_answers_as_of_a_past_day(loaded: Worker, expected: Expected) -> None:
    old = loaded.get("/commitments/in-ru-30bn-2025/", params={"as_of": "2022-03-31"}).json()
    assert Decimal(old["achieved"]) == expected.fiscal_year(2021) == Decimal("13.1") * BN
    assert old["data_through"] == "2022-03" and old["as_of"] == "2022-03-31"
    assert old["status"] != "achieved"
    met = loaded.get("/commitments/in-ru-30bn-2025/", params={"as_of": "2023-03-31"}).json()
    assert Decimal(met["achieved"]) == expected.fiscal_year(2022)
    assert met["status"] == "achieved"

    before_summit = loaded.get("/commitments/", params={"as_of": "2024-01-01"}).json()["items"]
    ids = {item["commitment_id"] for item in before_summit}
    assert "in-ru-100bn-2030" not in ids, "declared at the July 2024 summit"
    assert "in-ru-30bn-2025" in ids
    crude = {item["commitment_id"]: item for item in before_summit}["in-ru-crude-volume"]
    assert crude["target"] == "600000000.0000", "the revision of 2024-01-15 was not made yet"
    assert loaded.get("/commitments/in-ru-100bn-2030/",
                      params={"as_of": "2024-01-01"}).status_code == 404

    first_half = loaded.get("/totals/", params={"pair": "IN-RU", "sector": "all",
                                                 "measure": "value_usd", "period": "2023",
                                                 "as_of": "2023-06-30"}).json()["items"]
    assert [Decimal(row["value"]) for row in first_half] == [
        sum((expected.months[f"2023-{m:02d}"] for m in range(1, 7)), Decimal(0))]
    bad = loaded.get("/totals/", params={"as_of": "31/03/2023"})
    assert bad.status_code == 400 and "as_of" in bad.json()["error"]


def test_settlement_currency_shares(loaded: Worker, expected: Expected) -> None:
    rows = loaded.get("/settlement/", params={"pair": "RU-IN",
                                              "period": "FY2023-24"}).json()["items"]
    shares = {row["currency"]: Decimal(row["share"]) for row in rows}
    months = expected.fiscal_months(2023)
    total = sum((expected.months[m] for m in months), Decimal(0))
    for currency in ("USD", "INR", "RUB", "AED"):
        paid = sum((v for (m, c), v in expected.by_currency.items()
                    if m in months and c == currency), Decimal(0))
        assert shares[currency] == (paid / total).quantize(Decimal("0.0001")), currency
    assert abs(sum(shares.values()) - 1) <= Decimal("0.0003")
    rupee = loaded.get("/commitments/in-ru-rupee-settlement/").json()
    last = expected.fiscal_months(2024)
    rupee_paid = sum((v for (m, c), v in expected.by_currency.items()
                      if m in last and c == "INR"), Decimal(0))
    assert Decimal(rupee["achieved"]) == (rupee_paid / expected.fiscal_year(2024)).quantize(
        Decimal("0.0001"))
    series = 'tracker_settlement_share{currency="INR",pair="IN-RU",period="FY2023-24"}'
    # Metrics are refreshed on a timer after the fold, not with it.
    wait_until(lambda: series in loaded.get("/metrics").text, 10, message="the share metric")


def test_history_by_month_with_chart(loaded: Worker, expected: Expected) -> None:
    history = loaded.get("/commitments/in-ru-100bn-2030/history/").json()["items"]
    assert history[0]["month"] == "2024-07"
    assert history[-1]["month"] == "2025-03"
    for row in history:
        assert Decimal(row["achieved"]) == expected.trailing_twelve_months(row["month"]), row
    page = loaded.get("/commitments/in-ru-100bn-2030/", headers={"Accept": "text/html"}).text
    assert '<svg id="history-chart"' in page and "<polyline" in page


def test_totals_explained_event_by_event(loaded: Worker, expected: Expected) -> None:
    report = loaded.get("/totals/explain/", params={"pair": "IN-RU", "sector": "all",
                                                    "period": "FY2022-23"}).json()
    months = set(expected.fiscal_months(2022))
    assert Decimal(report["value"]) == expected.fiscal_year(2022) == Decimal("49.4") * BN
    by_topic = {}
    for (month, topic), count in expected.counted.items():
        if month in months:
            by_topic[f"{loaded_prefix(loaded)}{topic}"] = by_topic.get(
                f"{loaded_prefix(loaded)}{topic}", 0) + count
    assert report["events_by_topic"] == by_topic
    corrected = {c["event_id"] for c in report["corrections"] if c["outcome"] == "corrected"}
    assert corrected == {event_id for event_id, day in expected.corrections
                         if day[:7] in months}
    assert len(corrected) == 3
    largest = report["largest"][0]
    assert {"event_id", "topic", "partition", "offset", "amount"} <= set(largest)
    assert largest["topic"].endswith("energy-transactions")

    early = loaded.get("/totals/explain/", params={"pair": "IN-RU", "sector": "trade",
                                                   "period": "FY2021-22"}).json()
    assert sorted(d["event_id"] for d in early["duplicates_ignored"]) == sorted(
        event_id for event_id, day in expected.duplicate_ids if "2021-04" <= day[:7] <= "2022-03")
    assert all(d["sources"] and len(d["sources"]) == 2 for d in early["duplicates_ignored"])
    mirrored = loaded.get("/totals/explain/", params={"pair": "IN-RU", "sector": "trade",
                                                      "period": "2023-06"}).json()
    assert mirrored["hidden_by_mirror_rule"], "India's export report hidden by Russia's import"
    assert all(row["reported_by"] == "exporter" for row in mirrored["hidden_by_mirror_rule"])
    assert report["pending_fx"] == []
    assert loaded.get("/totals/explain/").status_code == 400


def test_commitment_explained(loaded: Worker, expected: Expected) -> None:
    report = loaded.get("/commitments/in-ru-defense-2018-contracts/explain/").json()
    assert Decimal(report["value"]) == Decimal("3.9") * BN
    assert set(report["events_by_topic"]) == {f"{loaded_prefix(loaded)}defense-transactions"}
    assert loaded.get("/commitments/nope/explain/").status_code == 404


def loaded_prefix(worker: Worker) -> str:
    return worker.env["TRACKER_TOPIC_PREFIX"]
