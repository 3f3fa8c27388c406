"""Builds data/sample.jsonl: India-Russia transactions, FY2021-22 to FY2024-25, that add up
to the published bilateral trade figures (Indian Ministry of Commerce, USD billion):

    FY2021-22 13.1   FY2022-23 49.4   FY2023-24 65.7   FY2024-25 68.7

Each fiscal year's exports and imports are split by sector (energy commodities, defense
deliveries, all other trade) and spread over months and records with a fixed seed, so the
file is the same on every run. Mixed in on purpose: settlement in rupees, dirhams and
roubles (with FX rates), a flow reported by both sides (mirror statistics), duplicates,
corrections (one before its original), a reversal, a rate that arrives after the events
that need it, and malformed records. Run: ``python data/generate_sample.py > data/sample.jsonl``.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from decimal import Decimal

RNG = random.Random(20240709)
CENT = Decimal("0.01")
BN = Decimal(1_000_000_000)

# Fiscal year start -> (exports IN>RU, imports RU>IN), USD billion; sums are the published
# totals. Imports split into energy and defense deliveries; the rest is other trade.
FISCAL_YEARS = {
    2021: {"exports": Decimal("3.25"), "imports": Decimal("9.85"),
           "energy": Decimal("3.00"), "defense": Decimal("1.20"), "crude_bbl": 32_000_000},
    2022: {"exports": Decimal("3.14"), "imports": Decimal("46.26"),
           "energy": Decimal("33.00"), "defense": Decimal("1.00"), "crude_bbl": 440_000_000},
    2023: {"exports": Decimal("4.30"), "imports": Decimal("61.40"),
           "energy": Decimal("47.00"), "defense": Decimal("0.90"), "crude_bbl": 650_000_000},
    2024: {"exports": Decimal("4.90"), "imports": Decimal("63.80"),
           "energy": Decimal("50.00"), "defense": Decimal("0.80"), "crude_bbl": 640_000_000},
}
PUBLISHED_TOTALS = {"FY2021-22": "13.1", "FY2022-23": "49.4", "FY2023-24": "65.7",
                    "FY2024-25": "68.7"}

FX = {"INR": "0.012", "AED": "0.2723", "RUB": "0.0112"}
LATE_CURRENCY = ("CNY", "0.1389")  # its rate is published only at the end of the file

TRADE_GOODS = [("pharmaceuticals", "30"), ("machinery", "84"), ("fertilisers", "31"),
               ("iron_and_steel", "72"), ("pearls_and_gems", "71"), ("tea_and_coffee", "09")]
ENERGY_MIX = [("crude_oil", Decimal("0.86"), "bbl"), ("coal", Decimal("0.09"), "t"),
              ("lng", Decimal("0.05"), "mmbtu")]


def split(total: Decimal, parts: int, spread: float = 0.25) -> list[Decimal]:
    """``total`` into ``parts`` cent amounts that add up exactly."""
    weights = [1 + RNG.uniform(-spread, spread) for _ in range(parts)]
    cents = int(total / CENT)
    shares = [int(cents * w / sum(weights)) for w in weights]
    shares[-1] += cents - sum(shares)
    return [Decimal(s) * CENT for s in shares]


def months_of_fy(start: int) -> list[str]:
    return [f"{start}-{m:02d}" for m in range(4, 13)] + [f"{start + 1}-{m:02d}" for m in (1, 2, 3)]


def line(topic: str, value: object, key: str | None = None) -> str:
    record: dict[str, object] = {"topic": topic, "value": value}
    if key is not None:
        record["key"] = key
    return json.dumps(record, separators=(",", ":"))


def settle(usd: Decimal, currency: str) -> tuple[str, Decimal]:
    """An amount in ``currency`` worth about ``usd``, and its exact USD value."""
    amount = (usd / Decimal(FX[currency])).quantize(Decimal(1))
    return str(amount), amount * Decimal(FX[currency])


class Sample:
    def __init__(self) -> None:
        self.counter = 0
        self.lines: list[str] = []

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:05d}"

    def trade(self, month: str, direction: str, usd: Decimal, goods: tuple[str, str],
              currency: str = "USD", reporter: str = "IN") -> tuple[dict[str, object], Decimal]:
        """One trade record; returns it and the USD it really adds (after FX rounding)."""
        amount, worth = (str(usd), usd) if currency == "USD" else settle(usd, currency)
        partner = "RU" if reporter == "IN" else "IN"
        event = {"event_id": self.next_id(f"trade-{reporter.lower()}"),
                 "occurred_at": f"{month}-{RNG.randint(1, 28):02d}", "reporter": reporter,
                 "partner": partner, "direction": direction, "amount": amount,
                 "currency": currency, "commodity": goods[0], "hs_code": goods[1]}
        return event, worth

    def add(self, topic: str, event: dict[str, object]) -> None:
        self.lines.append(line(topic, event))


def build() -> list[str]:
    emitted = list(build_regular())
    return emitted + list(anomalies(emitted)) + [
        line("fx-rates", {"event_id": "fx-cny-2021", "occurred_at": "2025-04-01",
                          "currency": LATE_CURRENCY[0], "rate_to_usd": LATE_CURRENCY[1],
                          "valid_from": "2021-01-01"}, key=LATE_CURRENCY[0])]


def build_regular() -> Iterator[str]:
    sample = Sample()
    for currency, rate in FX.items():
        yield line("fx-rates", {"event_id": f"fx-{currency.lower()}-2021", "occurred_at":
                                "2021-01-01", "currency": currency, "rate_to_usd": rate,
                                "valid_from": "2021-01-01"}, key=currency)
    yield from commitments()
    mirror_months = {"2023-06", "2023-07", "2024-11"}
    for start, figures in FISCAL_YEARS.items():
        months = months_of_fy(start)
        trade_imports = figures["imports"] - figures["energy"] - figures["defense"]
        monthly = {
            "exports": split(figures["exports"] * BN, 12),
            "imports": split(trade_imports * BN, 12),
            "energy": split(figures["energy"] * BN, 12),
        }
        crude = split(Decimal(figures["crude_bbl"]), 12)
        for index, month in enumerate(months):
            month_exports(sample, month, monthly["exports"][index], month in mirror_months)
            month_imports(sample, month, monthly["imports"][index], index)
            month_energy(sample, month, monthly["energy"][index], crude[index].quantize(1))
        if start == 2022:
            misreport(sample.lines, (5, 25, 45))
        yield from sample.lines
        sample.lines.clear()
        yield from defense(sample, start, figures["defense"] * BN)


def misreport(lines: list[str], picks: tuple[int, ...]) -> None:
    """Send some trade records with a wrong amount, each followed (the first: preceded) by
    the correction carrying the right one, so the totals stay as published."""
    trade_positions = [i for i, text in enumerate(lines) if '"trade-transactions"' in text]
    for number, pick in reversed(list(enumerate(picks))):  # later first: no index shifts
        position = trade_positions[pick]
        right = json.loads(lines[position])["value"]
        wrong = {**right, "amount": str(Decimal(right["amount"]) + 7_000_000)}
        correction = {**right, "event_id": f"{right['event_id']}-correction",
                      "corrects": right["event_id"]}
        lines[position] = line("trade-transactions", wrong)
        lines.append(line("trade-transactions", correction))
        if number == 0:  # this correction reaches the broker before the record it corrects
            lines.insert(position, lines.pop())


def month_exports(sample: Sample, month: str, total: Decimal, mirrored: bool) -> None:
    remaining = total
    for part in split(total, 2)[:-1]:
        event, worth = sample.trade(month, "export", part, RNG.choice(TRADE_GOODS[:3]),
                                    currency="INR" if RNG.random() < 0.4 else "USD")
        sample.add("trade-transactions", event)
        remaining -= worth
    event, _ = sample.trade(month, "export", remaining, RNG.choice(TRADE_GOODS[:3]))
    sample.add("trade-transactions", event)
    if mirrored:
        # Russia reports the same month's imports from India: the importer's figure
        # counts, and it equals India's, so the published total is unchanged.
        mirror, _ = sample.trade(month, "import", total, ("mixed", "30"), reporter="RU")
        sample.add("trade-transactions", mirror)


def month_imports(sample: Sample, month: str, total: Decimal, index: int) -> None:
    parts = split(total, 3)
    remaining = total
    for part in parts[:-1]:
        currency = "RUB" if RNG.random() < 0.3 else "USD"
        if index == 5 and month.startswith("2024"):
            currency = LATE_CURRENCY[0]  # waits for the CNY rate at the end of the file
        if currency == LATE_CURRENCY[0]:
            amount = (part / Decimal(LATE_CURRENCY[1])).quantize(Decimal(1))
            worth = amount * Decimal(LATE_CURRENCY[1])
            event, _ = sample.trade(month, "import", part, RNG.choice(TRADE_GOODS[3:]))
            event["amount"], event["currency"] = str(amount), LATE_CURRENCY[0]
        else:
            event, worth = sample.trade(month, "import", part, RNG.choice(TRADE_GOODS[3:]),
                                        currency=currency)
        sample.add("trade-transactions", event)
        remaining -= worth
    event, _ = sample.trade(month, "import", remaining, RNG.choice(TRADE_GOODS[3:]))
    sample.add("trade-transactions", event)


def month_energy(sample: Sample, month: str, total: Decimal, crude_bbl: Decimal) -> None:
    remaining = total
    for commodity, share, unit in ENERGY_MIX:
        usd = (total * share).quantize(CENT) if commodity != "lng" else None
        currency = "AED" if commodity == "crude_oil" and RNG.random() < 0.35 else "USD"
        if usd is None:
            amount, worth = str(remaining), remaining
            currency = "USD"
        elif currency == "USD":
            amount, worth = str(usd), usd
        else:
            amount, worth = settle(usd, currency)
        remaining -= worth
        quantity = {"bbl": crude_bbl, "t": (worth / 110).quantize(1),
                    "mmbtu": (worth / 12).quantize(1)}[unit]
        sample.add("energy-transactions", {
            "event_id": sample.next_id("energy"), "occurred_at": f"{month}-15",
            "reporter": "IN", "partner": "RU", "direction": "import", "amount": amount,
            "currency": currency, "commodity": commodity, "quantity": str(quantity),
            "unit": unit})


def defense(sample: Sample, start: int, delivered: Decimal) -> Iterator[str]:
    """Deliveries (counted), plus contract and payment stages (kept as separate measures)."""
    programs = ["S-400", "S-400", "Project 11356"] if start == 2024 else ["S-400", "S-400"]
    for part, program, month in zip(split(delivered, len(programs)), programs,
                                    (f"{start}-12", f"{start + 1}-02", f"{start}-12"),
                                    strict=False):
        yield line("defense-transactions", {
            "event_id": sample.next_id("defense"), "occurred_at": f"{month}-10",
            "buyer": "IN", "supplier": "RU", "amount": str(part), "currency": "USD",
            "stage": "delivered", "program": program})
        yield line("defense-transactions", {
            "event_id": sample.next_id("defense"), "occurred_at": f"{month}-20",
            "buyer": "IN", "supplier": "RU", "amount": str(part), "currency": "USD",
            "stage": "paid", "program": program})
    if start == 2021:
        yield line("defense-transactions", {
            "event_id": "defense-ak203-contract", "occurred_at": "2021-12-06", "buyer": "IN",
            "supplier": "RU", "amount": "600000000", "currency": "USD",
            "stage": "contract_signed", "program": "AK-203"})


def commitments() -> Iterator[str]:
    common = {"schema_version": 1, "parties": ["IN", "RU"]}
    yield line("commitments", {**common, "event_id": "commitment-30bn-declared",
               "occurred_at": "2014-12-11", "commitment_id": "in-ru-30bn-2025",
               "action": "declared", "sector": "all", "metric": "value_usd",
               "target": "30000000000", "basis": "annual", "period_start": "2014-12-11",
               "deadline": "2025-12-31",
               "source": "15th India-Russia annual summit, New Delhi, December 2014"})
    yield line("commitments", {**common, "event_id": "commitment-100bn-declared",
               "occurred_at": "2024-07-09", "commitment_id": "in-ru-100bn-2030",
               "action": "declared", "sector": "all", "metric": "value_usd",
               "target": "100000000000", "basis": "annual", "period_start": "2024-07-01",
               "deadline": "2030-12-31",
               "source": "22nd India-Russia annual summit, Moscow, July 2024"})
    yield line("commitments", {**common, "event_id": "commitment-crude-declared",
               "occurred_at": "2023-01-15", "commitment_id": "in-ru-crude-volume",
               "action": "declared", "sector": "energy", "metric": "bbl",
               "target": "600000000", "basis": "annual", "period_start": "2023-01-01",
               "deadline": "2025-12-31",
               "source": "Illustrative volume target for the sample (~1.6 million bbl/day)"})
    yield line("commitments", {**common, "event_id": "commitment-crude-revised",
               "occurred_at": "2024-01-15", "commitment_id": "in-ru-crude-volume",
               "action": "revised", "target": "650000000",
               "source": "Illustrative revision: ~1.8 million bbl/day"})
    yield line("commitments", {**common, "event_id": "commitment-defense-declared",
               "occurred_at": "2018-10-05", "commitment_id": "in-ru-defense-2018-contracts",
               "action": "declared", "sector": "defense", "metric": "value_usd",
               "target": "6350000000", "basis": "cumulative", "period_start": "2018-10-01",
               "deadline": "2026-12-31",
               "source": "S-400 (2018, ~USD 5.4 bn) and Project 11356 frigates (2018, "
                         "~USD 0.95 bn) contracts: deliveries"})
    yield line("commitments", {**common, "event_id": "commitment-rupee-declared",
               "occurred_at": "2023-03-01", "commitment_id": "in-ru-rupee-settlement",
               "action": "declared", "sector": "all", "metric": "settlement_share",
               "currency": "INR", "target": "0.25", "basis": "annual",
               "period_start": "2023-01-01", "deadline": "2026-12-31",
               "source": "Illustrative: a quarter of bilateral trade settled in rupees"})
    yield line("commitments", {**common, "event_id": "commitment-draft-declared",
               "occurred_at": "2022-09-01", "commitment_id": "in-ru-draft-2023",
               "action": "declared", "sector": "trade", "metric": "value_usd",
               "target": "50000000000", "period_start": "2022-09-01",
               "deadline": "2023-12-31", "source": "Illustrative draft target"})
    yield line("commitments", {"event_id": "commitment-draft-withdrawn",
               "occurred_at": "2022-12-01", "commitment_id": "in-ru-draft-2023",
               "action": "withdrawn"})


def anomalies(emitted: list[str]) -> Iterator[str]:
    """Duplicates, a reversal and malformed records, none changing the totals."""
    trade_lines = [json.loads(text) for text in emitted if '"trade-transactions"' in text]
    for record in trade_lines[10:15]:
        yield line("trade-transactions", record["value"])  # exact duplicates: counted once
    erroneous = {"event_id": "trade-erroneous-keying", "occurred_at": "2023-08-14",
                 "reporter": "IN", "partner": "RU", "direction": "import",
                 "amount": "450000000", "currency": "USD", "commodity": "machinery"}
    yield line("trade-transactions", erroneous)
    yield line("trade-transactions", {**erroneous, "event_id": "trade-erroneous-reversal",
                                      "amount": "0", "corrects": "trade-erroneous-keying"})
    base = {"event_id": "bad", "occurred_at": "2024-05-01", "reporter": "IN",
            "partner": "RU", "direction": "import", "amount": "1000", "currency": "USD"}
    yield line("trade-transactions", "{not json")
    yield line("trade-transactions", {**base, "event_id": "bad-type", "amount": "lots"})
    yield line("trade-transactions", {**base, "event_id": "bad-country", "partner": "XX"})
    yield line("trade-transactions", {**base, "event_id": "bad-currency", "currency": "ZZZ"})
    yield line("trade-transactions", {k: v for k, v in base.items() if k != "direction"})
    yield line("trade-transactions", {**base, "event_id": "bad-negative", "amount": "-5"})
    yield line("energy-transactions", {**base, "event_id": "bad-version", "schema_version": 2,
                                       "commodity": "crude_oil"})
    yield line("defense-transactions", "\u0000\u00ff\u0007binary")


def main() -> None:
    sys.stdout.write("".join(text + "\n" for text in build()))


if __name__ == "__main__":
    main()
