"""The malformed corpus through the real broker, on every contract input topic, mixed with
valid events: the worker keeps running, every bad record lands in dead-letters exactly once
with its original key, bytes and provenance, every valid one is counted, and the numbers
reconcile (valid + dead letters == records sent)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tests.integration.conftest import Deployment, Worker, wait_until
from tests.integration.reliability import Record, caught_up, events_counted, produce_located

pytestmark = pytest.mark.integration

LIMIT = 2048
TRANSACTION_TOPICS = ("trade-transactions", "energy-transactions", "defense-transactions")
SECTOR = {"trade-transactions": "trade", "energy-transactions": "energy",
          "defense-transactions": "defense"}
EUR_RATE = Decimal("1.25")


@dataclass(frozen=True)
class Case:
    topic: str
    key: bytes | None
    value: bytes | None
    reason: str | None  # None: valid; else a fragment the dead letter's reason must contain
    label: str


def base(topic: str, event_id: str) -> dict[str, Any]:
    """A valid event for ``topic``."""
    if topic == "trade-transactions":
        return {"event_id": event_id, "occurred_at": "2024-05-15", "reporter": "IN",
                "partner": "RU", "direction": "import", "amount": "1000", "currency": "USD"}
    if topic == "energy-transactions":
        return {"event_id": event_id, "occurred_at": "2024-05-15", "reporter": "IN",
                "partner": "RU", "direction": "import", "amount": "2000", "currency": "USD",
                "commodity": "crude_oil", "quantity": "100", "unit": "bbl"}
    if topic == "defense-transactions":
        return {"event_id": event_id, "occurred_at": "2024-05-15", "buyer": "IN",
                "supplier": "RU", "amount": "3000", "currency": "USD", "stage": "delivered"}
    if topic == "commitments":
        return {"event_id": event_id, "occurred_at": "2024-01-01",
                "commitment_id": f"c-{event_id}", "action": "declared", "parties": ["IN", "RU"],
                "sector": "all", "metric": "value_usd", "target": "100000",
                "period_start": "2024-01-01", "deadline": "2030-12-31", "source": "test"}
    return {"event_id": event_id, "occurred_at": "2024-01-01", "currency": "EUR",
            "rate_to_usd": str(EUR_RATE), "valid_from": "2000-01-01"}


WRONG_TYPE = {"trade-transactions": ("amount", True), "energy-transactions": ("quantity", [1]),
              "defense-transactions": ("stage", 3), "commitments": ("target", {"a": 1}),
              "fx-rates": ("valid_from", 20240101)}
UNKNOWN_COUNTRY = {"trade-transactions": ("partner", "XX"), "energy-transactions":
                   ("reporter", "XX"), "defense-transactions": ("supplier", "XX"),
                   "commitments": ("parties", ["IN", "XX"])}
MISSING = {"trade-transactions": "direction", "energy-transactions": "commodity",
           "defense-transactions": "buyer", "commitments": "deadline", "fx-rates": "rate_to_usd"}
NEGATIVE = {"trade-transactions": "amount", "energy-transactions": "amount",
            "defense-transactions": "amount", "fx-rates": "rate_to_usd"}


def corpus() -> list[Case]:
    cases: list[Case] = []
    for topic in (*TRANSACTION_TOPICS, "commitments", "fx-rates"):
        short = topic.split("-")[0]

        def event(number: int, _short: str = short, _topic: str = topic,
                  **changes: Any) -> dict[str, Any]:
            return {**base(_topic, f"{_short}-{number}"), **changes}

        def bad(label: str, value: bytes | None, reason: str, key: bytes | None = b"k",
                _topic: str = topic) -> None:
            cases.append(Case(_topic, key, value, reason, label))

        def good(label: str, value: dict[str, Any], key: bytes | None = b"k",
                 _topic: str = topic) -> None:
            cases.append(Case(_topic, key, orjson.dumps(value), None, label))

        good("valid", event(1))
        bad("not JSON", b"{not json", "not valid JSON")
        bad("JSON but not an object", b"[1, 2]", "Input should be an object")
        field, junk = WRONG_TYPE[topic]
        bad("wrong type", orjson.dumps(event(2, **{field: junk})), field)
        if topic in UNKNOWN_COUNTRY:
            field, junk = UNKNOWN_COUNTRY[topic]
            bad("unknown country", orjson.dumps(event(3, **{field: junk})),
                "unknown country code 'XX'")
        if topic != "commitments":
            bad("unknown currency", orjson.dumps(event(4, currency="XYZ")),
                "unknown currency code 'XYZ'")
        missing = event(5)
        del missing[MISSING[topic]]
        bad("missing field", orjson.dumps(missing), f"lacks: {MISSING[topic]}"
            if topic == "commitments" else f"{MISSING[topic]}: Field required")
        if topic in NEGATIVE:
            bad("negative", orjson.dumps(event(6, **{NEGATIVE[topic]: "-5"})),
                "negative" if topic != "fx-rates" else "rate_to_usd")
        big = orjson.dumps(event(7, padding="x" * (LIMIT + 10)))
        bad("oversize", big, f"payload of {len(big)} bytes exceeds the limit of {LIMIT}")
        bad("unknown schema version", orjson.dumps(event(8, schema_version=2)),
            "schema_version")
        bad("empty value", b"", "empty value")
        bad("tombstone", None, "empty value")
        bad("empty key and no event id", orjson.dumps(event(9, event_id="")), "event_id",
            key=b"")
        bad("binary junk", bytes(range(256))[::-1] + b"\x00\x80\xff", "not valid JSON",
            key=b"\x00\xff")
        bad("invalid UTF-8 in a string", orjson.dumps(event(10))[:-2] + b'\xff"}',
            "not valid JSON", key=None)
        bad("unknown field", orjson.dumps(event(11, colour="red")), "colour")
        good("valid, empty key", event(12), key=b"")
        good("valid, no key", event(13), key=None)
    return cases


def expected_totals(cases: list[Case]) -> dict[tuple[str, str, str], Decimal]:
    """(pair, sector, year) -> value_usd from the valid transactions, computed plainly."""
    rate = {"USD": Decimal(1), "EUR": EUR_RATE}
    expected: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for case in cases:
        if case.reason is None and case.topic in TRANSACTION_TOPICS:
            event = orjson.loads(case.value or b"")
            parties = (event.get("reporter") or event["buyer"],
                       event.get("partner") or event["supplier"])
            pair = "-".join(sorted(parties))
            amount = Decimal(event["amount"]) * rate[event["currency"]]
            expected[(pair, SECTOR[case.topic], event["occurred_at"][:4])] += amount
    return dict(expected)


def value_totals(worker: Worker) -> dict[tuple[str, str, str], Decimal]:
    rows = worker.get("/totals/", params={"measure": "value_usd"}).json()["items"]
    return {(r["pair"], r["sector"], r["period"]): Decimal(r["value"]) for r in rows
            if len(r["period"]) == 4 and r["sector"] != "all"}


def test_malformed_corpus_on_every_topic(deployment: Deployment) -> None:
    cases = corpus()
    # One more valid trade in EUR: the rate is in the same corpus, so it may wait for it.
    cases.append(Case("trade-transactions", b"DE-FR", orjson.dumps(
        {**base("trade-transactions", "trade-eur"), "reporter": "DE", "partner": "FR",
         "currency": "EUR", "amount": "80"}), None, "valid, in EUR"))
    bad_cases = [case for case in cases if case.reason is not None]
    worker = deployment.worker(TRACKER_MAX_EVENT_BYTES=str(LIMIT))
    worker.start()
    located = produce_located(deployment, [(c.topic, c.key, c.value) for c in cases])
    where = dict(zip(located, cases, strict=True))
    assert len(where) == len(cases)

    expected = expected_totals(cases)
    wait_until(lambda: value_totals(worker) == expected, 60,
               message="every valid transaction counted in the totals")
    # The intake commits a batch only once its dead letters are on the broker: when it has
    # committed every record sent, no dead letter is still on its way.
    wait_until(lambda: caught_up(deployment), 30,
               message="the worker to commit every record sent")
    letters = deployment.consume_to_end("dead-letters")

    assert worker.get("/health/").status_code == 200, "bad input must not stop the worker"
    assert worker.alive
    sources = Counter()
    problems = []
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        source = (headers["tracker.source.topic"], int(headers["tracker.source.partition"]),
                  int(headers["tracker.source.offset"]))
        sources[source] += 1
        case = where.get(source)
        if case is None:
            problems.append(f"dead letter from nowhere: {source}")
            continue
        if case.reason is None:
            problems.append(f"valid record dead-lettered: {case.label} on {case.topic}: "
                            f"{headers['tracker.reason']}")
            continue
        if letter.value != case.value:
            problems.append(f"{case.topic}/{case.label}: value {letter.value!r:.60} "
                            f"!= original {case.value!r:.60}")
        if letter.key != case.key:
            problems.append(f"{case.topic}/{case.label}: key {letter.key!r} != {case.key!r}")
        if case.reason not in headers["tracker.reason"]:
            problems.append(f"{case.topic}/{case.label}: reason "
                            f"{headers['tracker.reason']!r} lacks {case.reason!r}")
    twice = [source for source, count in sources.items() if count > 1]
    missing = [f"{where[s].topic}/{where[s].label}" for s in located
               if where[s].reason is not None and s not in sources]
    assert not problems, "\n".join(problems)
    assert not twice, f"dead-lettered more than once: {twice}"
    assert not missing, f"bad records missing from dead-letters: {missing}"
    assert len(letters) == len(bad_cases)

    # Counts reconcile: per source topic, tracker_events_total adds up to the records sent
    # and its dead_letter series to the bad ones; overall, the valid records the metrics
    # counted plus the records on the dead-letters topic are the records sent.
    sent = Counter(deployment.topic(case.topic) for case in cases)
    dead = Counter(deployment.topic(case.topic) for case in bad_cases)
    valid = Counter(deployment.topic(case.topic) for case in cases if case.reason is None)

    def reconciled() -> bool:
        counted = events_counted(worker)
        handled, kept = Counter(), Counter()
        for (topic, outcome), value in counted.items():
            if topic in sent:
                assert outcome in ("applied", "duplicate", "pending", "dead_letter"), outcome
                handled[topic] += int(value)
                if outcome != "dead_letter":
                    kept[topic] += int(value)
        dead_counted = {t: int(counted.get((t, "dead_letter"), 0)) for t in sent}
        assert dead_counted == dict(dead), (dead_counted, dict(dead))
        return handled == sent and kept == valid

    wait_until(reconciled, 15, message="tracker_events_total to reconcile with records sent")
    assert sum(valid.values()) + len(letters) == len(cases) == len(located)

    listing = worker.get("/commitments/").json()["items"]
    assert {item["commitment_id"] for item in listing} == {"c-commitments-1",
                                                           "c-commitments-12",
                                                           "c-commitments-13"}
    assert worker.get("/health/").status_code == 200


def test_a_schema_valid_extreme_commitment_does_not_stall_the_fold(
        deployment: Deployment) -> None:
    """Once, a target of '1e30' made Decimal.quantize raise after every event of its pair
    (28-digit context) and the fold crawled. Targets are now limited to 30 digits and
    rounded in an 80-digit context: the largest valid one must not disturb anything."""
    worker = deployment.worker()
    worker.start()
    pill = {**base("commitments", "pill"), "commitment_id": "huge", "sector": "trade",
            "target": "9999999999999999999999.99999999"}
    too_big = {**base("commitments", "too-big"), "commitment_id": "too-big",
               "sector": "trade", "target": "1e30"}
    pairs = [("IN", "RU"), ("DE", "FR"), ("BR", "ZA")]
    records: list[Record] = [("commitments", b"huge", orjson.dumps(pill)),
                             ("commitments", b"too-big", orjson.dumps(too_big))]
    expected: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for number in range(60):
        reporter, partner = pairs[number % 3]
        event = {**base("trade-transactions", f"after-{number}"), "reporter": reporter,
                 "partner": partner}
        records.append(("trade-transactions", None, orjson.dumps(event)))
        expected[("-".join(sorted((reporter, partner))), "trade", "2024")] += 1000
    deployment.produce(records)

    wait_until(lambda: value_totals(worker) == expected, 15,
               message="the 60 events after the extreme commitment to be folded")
    assert worker.get("/commitments/").status_code == 200
    assert worker.get("/commitments/huge/").status_code == 200
    assert worker.get("/commitments/too-big/").status_code == 404
    [letter] = deployment.consume_all("dead-letters", 1)
    assert b"target" in dict(letter.headers)["tracker.reason"]
