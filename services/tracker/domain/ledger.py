"""The fold: flows into per-pair ledgers, idempotent by event id and by log position.

State is split by key so each piece can live in one table value:

* a *root entry* per original event id (``pair/root_id``) remembers which events touched
  that flow (original, corrections, duplicates) and what each changed - in a compact list
  while that is one plain event (``RootEntry``);
* a *ledger* per pair holds the buckets the totals are derived from, grouped by month, the
  events waiting for an FX rate, and the position of the last change it applied.

A change touches only the months it concerns, so its cost does not grow with the pair's
history. A pure fold copies what it changes; a store that owns its values (the tables,
for one ledger-input record at a time) lets it change them in place instead (see
``apply_change``). Either way each month records the position of the last change applied
to it, which says which months changed since a position - what a write of the ledger
holds (``ledger_update``: those months, whole or just their changed buckets, and the head -
position, pending flows, counts), and what ``HeadlineCache`` needs to know to recompute a
month.

Every change carries its position in the ledger-input log (record offset, index in the
record). A value that already reflects a position ignores it - the head and each month
keep their own - so an event replayed after a crash, whatever subset of the previous
attempt's writes survived, is applied exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Context, Decimal, localcontext
from itertools import chain
from typing import Any, Literal, NamedTuple

from services.tracker.domain.flows import SECTORS, VALUE, Flow
from services.tracker.domain.fx import Rates, rate_on
from services.tracker.domain.periods import period_labels

# Where a change sits in the ledger-input log: (record offset, item in the record), and for a
# flow released from the pending list also where it was parked. Tuples compare
# lexicographically, so a release sorts right after the rate that let it through.
Position = tuple[int, ...]
Buckets = dict[str, str]  # "sector|measure|route|role|day|currency" -> decimal string
JSON = dict[str, Any]

Outcome = Literal["applied", "corrected", "superseded", "duplicate"]

# Amounts have up to 30 digits and rates are unbounded: exact sums need more than the
# default 28 significant digits, or the totals would depend on arrival order.
MONEY = Context(prec=80)
ZERO = Decimal(0)


def position_key(position: Position) -> str:
    return ":".join(map(str, position))


def is_after(position: Position, applied: list[int] | None) -> bool:
    return applied is None or position > tuple(applied)


NO_CURRENCY = "-"  # quantity buckets


def bucket_key(sector: str, measure: str, route: str, role: str, day: str,
               currency: str = "USD") -> str:
    """``day`` is an ISO date (a month label works too: it sorts as the month's start).
    Days make answers ``as_of`` any date exact; the settlement currency makes its share
    computable."""
    return f"{sector}|{measure}|{route}|{role}|{day}|{currency}"


def contribution_of(flow: Flow, rate_to_usd: Decimal) -> Buckets:
    """What one flow adds to the buckets: its USD value, and its quantity if it has one."""
    contribution = {
        bucket_key(flow.sector, flow.measure, flow.route, flow.role, flow.day, flow.currency):
        str(MONEY.multiply(flow.amount, rate_to_usd))}
    if flow.quantity is not None and flow.unit is not None:
        key = bucket_key(flow.sector, flow.unit, flow.route, flow.role, flow.day, NO_CURRENCY)
        contribution[key] = str(flow.quantity)
    return contribution


class Change(NamedTuple):
    """The effect of one event on the totals: ``before`` is replaced by ``after``. A named
    tuple: immutable, and several times faster to build than a frozen dataclass (one per
    event)."""

    outcome: Outcome
    event_id: str
    before: Buckets | None = None
    after: Buckets | None = None

    def to_json(self) -> JSON:
        return {"outcome": self.outcome, "event_id": self.event_id,
                "before": self.before, "after": self.after}

    @classmethod
    def from_json(cls, data: JSON) -> Change:
        return cls(**data)


# A root entry has one of three forms, all plain JSON:
#
# * full: {"current": buckets or None, "current_event": id, "current_log_position": [..],
#   "corrected": bool, "seen": {event id: position}, "changes": {position_key: Change}};
# * compact: [event_id, record_offset, index, bucket, amount, bucket, amount, ...] - a root
#   touched by one plain event applied at its own log position, which is what almost every
#   root is. It says all the full form would (``expanded``) in one list instead of seven
#   dicts and lists, which is most of what the roots cost in memory, to build and to write;
# * alias: {"alias_of": key} - under a correction's own id, the key of the root it corrects.
RootEntry = JSON | list[Any]

# The entry of an event not seen yet. Read, never changed: ``record`` builds a new entry.
EMPTY_ROOT: JSON = {"current": None, "current_event": None, "current_log_position": None,
                    "corrected": False, "seen": {}, "changes": {}}


def compact_root(event_id: str, position: Position, contribution: Buckets) -> list[Any]:
    """The compact entry of a root whose one event was applied at ``position`` (record
    offset, index), its log position."""
    return [event_id, *position, *chain.from_iterable(contribution.items())]


def expanded(entry: RootEntry) -> JSON:
    """The full form of a root entry (a full entry itself, not a copy)."""
    if isinstance(entry, dict):
        return entry
    event_id, offset, index = entry[:3]
    contribution = dict(zip(entry[3::2], entry[4::2], strict=True))
    return {"current": contribution, "current_event": event_id,
            "current_log_position": [offset, index], "corrected": False,
            "seen": {event_id: [offset, index]},
            "changes": {position_key((offset, index)):
                        Change("applied", event_id, None, contribution).to_json()}}


def alias_root(key: str) -> JSON:
    return {"alias_of": key}


def alias_target(entry: RootEntry | None) -> str | None:
    """The root key an alias entry names; None for a root entry or no entry."""
    if isinstance(entry, dict) and "alias_of" in entry:
        return str(entry["alias_of"])
    return None


def records_events(entry: RootEntry | None) -> bool:
    """Whether an entry is a root that has recorded an event (not none, nor an alias)."""
    if entry is None or alias_target(entry) is not None:
        return False
    return isinstance(entry, list) or bool(entry["seen"])


def record(entry: RootEntry | None, flow: Flow, contribution: Buckets, position: Position,
           log_position: Position | None = None) -> tuple[RootEntry, Change]:
    """Record a flow in its root entry and say what it changes.

    ``position`` is where the change is applied; ``log_position`` where the event sits in
    the log (they differ for a flow that waited for an FX rate). A correction replaces the
    current contribution of its root whichever order they arrive in; among corrections the
    one later in the log wins. An original that arrives after its correction, or a
    correction older than the current one, is remembered but changes nothing.

    A root's first event, if a plain one applied at its log position, gets a compact
    entry; the next event that changes the root stores the full form. An entry that
    changes nothing (a replayed position, a duplicate) is returned as it was.
    """
    log_position = log_position or position
    if entry is None:
        if not flow.is_correction and log_position == position and len(position) == 2:
            return (compact_root(flow.event_id, position, contribution),
                    Change("applied", flow.event_id, None, contribution))
        entry = EMPTY_ROOT
    full = expanded(entry)
    at = position_key(position)
    replayed = full["changes"].get(at)
    if replayed is not None:
        return entry, Change.from_json(replayed)
    if flow.event_id in full["seen"]:
        return entry, Change("duplicate", flow.event_id)
    current_at = full["current_log_position"]
    newer = current_at is None or log_position > tuple(current_at)
    if flow.is_correction and (newer or not full["corrected"]):
        change = Change("corrected", flow.event_id, full["current"], contribution)
    elif flow.is_correction or full["corrected"]:
        change = Change("superseded", flow.event_id, None, None)
    else:
        change = Change("applied", flow.event_id, None, contribution)
    updated = {
        **full,
        "seen": {**full["seen"], flow.event_id: list(position)},
        "changes": {**full["changes"], at: change.to_json()},
    }
    if change.outcome in ("applied", "corrected"):
        updated.update(current=contribution, current_event=flow.event_id,
                       current_log_position=list(log_position),
                       corrected=full["corrected"] or flow.is_correction)
    return updated, change


def empty_ledger(pair: str) -> JSON:
    """``months``: month -> buckets of that month; ``month_events``: month -> bucket key ->
    how many events contribute to that bucket; ``month_sums`` and ``month_sum_events``: the
    same summed over the month's days (``sum_key``), which is all the headline of a whole
    month needs; ``month_positions``: month -> position of the last change applied to it.
    A month whose buckets all went stays, empty, so that its position does."""
    return {"pair": pair, "position": None, "months": {}, "month_events": {},
            "month_sums": {}, "month_sum_events": {}, "month_positions": {}, "pending": [],
            "counts": {"applied": 0, "corrected": 0, "superseded": 0, "duplicate": 0}}


def sum_key(key: str) -> str:
    """A bucket key without its day: ``sector|measure|route|role|currency``."""
    return month_and_sum_key(key)[1]


def month_and_sum_key(key: str) -> tuple[str, str]:
    """A bucket key's month and its ``sum_key``, from one split."""
    head, day, currency = key.rsplit("|", 2)
    return day[:7], f"{head}|{currency}"


MONTH_FIELDS = {"months": "buckets", "month_events": "events", "month_sums": "sums",
                "month_sum_events": "sum_events", "month_positions": "position"}


HEAD_FIELDS = ("pair", "position", "pending", "counts")


# Month -> the bucket keys changed in it since the ledger was last stored; None: more
# than is known changed (the month was partly stored already), so store it whole.
Touched = dict[str, set[str] | None]


def ledger_update(ledger: JSON, since: Position = (),
                  partial: Mapping[str, set[str]] | None = None) -> JSON:
    """What storing ``ledger`` writes, as one changelog record: for each month changed at
    or after ``since``, what the ledger holds for it, and the head (position, pending
    flows, counts). The default, every month, writes a ledger whole.

    A month in ``partial`` is written as just the given bucket keys (and their sums): their
    values, or None for a bucket that went. Such a piece needs the month's earlier pieces
    to mean anything; a whole one stands alone (see ``with_update``).

    One record, so a crash keeps all of it or none: a flow released from the pending list
    leaves the head in the same record that adds it to its month.
    """
    positions = ledger["month_positions"]
    partial = partial or {}
    months = {}
    for month in ledger["months"]:
        if tuple(positions[month]) < since:
            continue
        keys = partial.get(month)
        months[month] = ({name: ledger[field][month] for field, name in MONTH_FIELDS.items()}
                         if keys is None else _month_piece(ledger, month, keys))
    return {"months": months, "head": {field: ledger[field] for field in HEAD_FIELDS}}


def _month_piece(ledger: JSON, month: str, keys: Iterable[str]) -> JSON:
    # One plain loop: most pieces hold a key or two, where comprehensions cost more.
    buckets, events = ledger["months"][month], ledger["month_events"][month]
    sums, sum_events = ledger["month_sums"][month], ledger["month_sum_events"][month]
    piece_buckets, piece_events, piece_sums, piece_sum_events = {}, {}, {}, {}
    for key in keys:
        piece_buckets[key] = buckets.get(key)
        piece_events[key] = events.get(key)
        summed = sum_key(key)
        piece_sums[summed] = sums.get(summed)
        piece_sum_events[summed] = sum_events.get(summed)
    return {"partial": True, "position": ledger["month_positions"][month],
            "buckets": piece_buckets, "events": piece_events, "sums": piece_sums,
            "sum_events": piece_sum_events}


def with_update(ledger: JSON | None, pair: str, update: JSON) -> JSON:
    """A stored ledger with one ``ledger_update`` applied, as recovery puts it together."""
    ledger = ledger or empty_ledger(pair)
    merged = {field: dict(ledger[field]) for field in MONTH_FIELDS}
    for month, piece in update["months"].items():
        merged["month_positions"][month] = piece["position"]
        for field in MONTH_VALUES:
            name = MONTH_FIELDS[field]
            if not is_partial(piece):
                merged[field][month] = piece[name]
                continue
            values = merged[field][month] = dict(merged[field].get(month, {}))
            for key, value in piece[name].items():
                if value is None:
                    values.pop(key, None)
                else:
                    values[key] = value
    return {**ledger, **merged, **update["head"]}


def is_partial(piece: JSON) -> bool:
    return bool(piece.get("partial"))


def buckets_of(ledger: JSON | None) -> Buckets:
    """Every bucket of a ledger, all months together."""
    if ledger is None:
        return {}
    return {key: amount for month in ledger["months"].values() for key, amount in month.items()}


MONTH_MAPS = tuple(MONTH_FIELDS)
MONTH_VALUES = ("months", "month_events", "month_sums", "month_sum_events")


def apply_change(ledger: JSON, change: Change, position: Position,
                 released: Flow | None = None, in_place: bool = False,
                 touched: Touched | None = None) -> JSON:
    """Apply a change to the parts of the ledger that do not reflect ``position`` yet: each
    month it touches, and the head (counts, pending flows).

    ``released`` is a pending flow this change applies: it leaves the pending list in the
    same change of the head, which is stored in one record with the months it changed
    (see ``ledger_update``), so no crash can lose it between the two. A bucket no event
    contributes to any more is removed, so an importer whose figure was corrected away no
    longer hides the exporter's report of that route and month.

    Copy on write: what the ledger held before is left as it was. With ``in_place`` the
    ledger and its months are changed instead - for a store that owns its values, so that
    a batch does not copy a month for every event that touches it.

    ``touched`` gathers which bucket keys changed in which month, for a store that writes
    just those (see ``ledger_update``). It starts empty for each ledger-input record: a
    month already changed at that record's offset before (by an attempt a crash cut
    short) is marked to be written whole, since what that attempt changed is not known.
    """
    at = list(position)
    month_positions = ledger["month_positions"]
    steps = [*(_step(key, -1, MONEY.minus(Decimal(amount)))
               for key, amount in (change.before or {}).items()),
             *(_step(key, 1, Decimal(amount)) for key, amount in (change.after or {}).items())]
    behind = {month for _, month, _, _, _ in steps
              if (applied := month_positions.get(month)) is None or at > applied}
    head_behind = (applied := ledger["position"]) is None or at > applied
    if not head_behind and not behind:
        return ledger
    updated = ledger if in_place else {**ledger, **{name: dict(ledger[name])
                                                    for name in MONTH_MAPS}}
    months, month_events = updated["months"], updated["month_events"]
    sums_by_month, sum_events_by_month = updated["month_sums"], updated["month_sum_events"]
    for month in behind:
        if touched is not None:
            _note_month(touched, month, month_positions.get(month), position)
        for name in MONTH_VALUES:
            values = updated[name]
            if not in_place:
                values[month] = dict(values.get(month, {}))
            elif month not in values:
                values[month] = {}
        updated["month_positions"][month] = at
    for key, month, summed, sign, amount in steps:
        if month in behind:
            _add(months[month], month_events[month], key, sign, amount)
            _add(sums_by_month[month], sum_events_by_month[month], summed, sign, amount)
            if touched is not None and (keys := touched[month]) is not None:
                keys.add(key)
    if not head_behind:
        return updated
    counts = updated["counts"] if in_place else dict(ledger["counts"])
    counts[change.outcome] += 1
    updated["counts"] = counts
    updated["position"] = at
    if released is not None:
        updated["pending"] = [item for item in ledger["pending"]
                              if item["flow"]["event_id"] != released.event_id]
    return updated


class Additions:
    """What new plain flows add to one ledger, gathered over a run of one ledger-input
    record and added at once by ``add_all``: the same ledger as ``apply_change`` for each
    in turn, with each bucket read and written once per run instead of once per flow.

    Only for flows that change nothing but buckets and counts - new, no correction, a
    known rate - at positions after every one the ledger reflects (``is_after``): such a
    flow is applied whatever the order, and Decimal addition at ``MONEY``'s precision is
    exact, so the order of the additions does not show in the sums."""

    __slots__ = ("buckets", "count", "last", "months")

    def __init__(self) -> None:
        self.buckets: dict[str, list[Any]] = {}  # bucket key -> [events, amount]
        self.months: dict[str, Position] = {}  # month -> position of its last flow
        self.last: Position = ()
        self.count = 0

    def add(self, contribution: Buckets, month: str, position: Position) -> None:
        buckets = self.buckets
        for key, text in contribution.items():
            gathered = buckets.get(key)
            if gathered is None:
                buckets[key] = [1, Decimal(text)]
            else:
                gathered[0] += 1
                gathered[1] = MONEY.add(gathered[1], Decimal(text))
        self.months[month] = position
        self.last = position
        self.count += 1


def add_all(ledger: JSON, additions: Additions, touched: Touched | None = None) -> None:
    """Apply gathered ``Additions`` to a ledger the caller owns, in place; ``touched`` as
    for ``apply_change``."""
    month_positions = ledger["month_positions"]
    for month, position in additions.months.items():
        if touched is not None:
            _note_month(touched, month, month_positions.get(month), position)
        for name in MONTH_VALUES:
            values = ledger[name]
            if month not in values:
                values[month] = {}
        month_positions[month] = list(position)
    months, month_events = ledger["months"], ledger["month_events"]
    # A month's sum is shared by its days' buckets: gathered first, written once.
    sums: dict[tuple[str, str], list[Any]] = {}  # (month, sum key) -> [events, amount]
    for key, (events, amount) in additions.buckets.items():
        month_and_sum = month_and_sum_key(key)
        month = month_and_sum[0]
        _add(months[month], month_events[month], key, events, amount)
        gathered = sums.get(month_and_sum)
        if gathered is None:
            sums[month_and_sum] = [events, amount]
        else:
            gathered[0] += events
            gathered[1] = MONEY.add(gathered[1], amount)
        if touched is not None and (keys := touched[month]) is not None:
            keys.add(key)
    sums_by_month, sum_events_by_month = ledger["month_sums"], ledger["month_sum_events"]
    for (month, summed), (events, amount) in sums.items():
        _add(sums_by_month[month], sum_events_by_month[month], summed, events, amount)
    ledger["counts"]["applied"] += additions.count
    ledger["position"] = list(additions.last)


def _note_month(touched: Touched, month: str, previous: list[int] | None,
                position: Position) -> None:
    """Start noting the keys a record changes in a month, unless the month changed at
    this record's offset before (see ``apply_change``)."""
    if month not in touched:
        touched[month] = (None if previous is not None and previous[0] == position[0]
                          else set())


def _step(key: str, sign: int, amount: Decimal) -> tuple[str, str, str, int, Decimal]:
    """A bucket change as ``apply_change`` applies it: the key, its month and month-sum
    key, the event count it adds and the signed amount."""
    month, summed = month_and_sum_key(key)
    return key, month, summed, sign, amount


def _add(buckets: Buckets, events: dict[str, int], key: str, sign: int,
         amount: Decimal) -> None:
    """Add ``amount`` (already signed) to a bucket and ``sign`` to the number of events
    contributing to it; a bucket no event contributes to any more goes."""
    count = events.get(key, 0) + sign
    if count == 0:
        del buckets[key], events[key]
        return
    previous = buckets.get(key)
    buckets[key] = str(MONEY.add(ZERO if previous is None else Decimal(previous), amount))
    events[key] = count


def add_pending(ledger: JSON, flow: Flow, position: Position) -> JSON:
    """Park a flow whose currency has no rate yet; it is applied when one arrives."""
    if not is_after(position, ledger["position"]):
        return ledger
    pending = [*ledger["pending"], {"position": list(position), "flow": flow.to_json()}]
    return {**ledger, "pending": pending, "position": list(position)}


def releasable(ledger: JSON, rates: Rates) -> list[tuple[Flow, Position]]:
    """Pending flows that now have a rate, with their log positions, in log order."""
    ready = []
    for item in ledger["pending"]:
        flow = Flow.from_json(item["flow"])
        if rate_on(rates, flow.currency, flow.day) is not None:
            ready.append((flow, tuple(item["position"])))
    return sorted(ready, key=lambda pair: pair[1])


# -- reading: headline totals under the mirror rule ----------------------------------------

def headline(buckets: Buckets, as_of: date | None = None
             ) -> dict[tuple[str, str, str, str], Decimal]:
    """(sector, measure, month, currency) -> amount, by event time up to ``as_of``.

    The mirror rule picks, for each route and month, the importer's figures when the
    importer reported anything, else the exporter's.
    """
    limit = as_of.isoformat() if as_of else None
    by_route: dict[tuple[str, str, str, str], dict[str, dict[str, Decimal]]] = defaultdict(
        lambda: defaultdict(dict))
    for key, text in buckets.items():
        sector, measure, route, role, day, currency = key.split("|")
        if limit is not None and day > limit:
            continue
        by_currency = by_route[(sector, measure, route, day[:7])][role]
        by_currency[currency] = MONEY.add(by_currency.get(currency, Decimal(0)), Decimal(text))
    result: dict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    with localcontext(MONEY):
        for (sector, measure, _route, month), roles in by_route.items():
            chosen = roles["importer"] if "importer" in roles else roles["exporter"]
            for currency, amount in chosen.items():
                result[(sector, measure, month, currency)] += amount
    return dict(result)


Headline = dict[tuple[str, str, str, str], Decimal]


def headline_months(buckets: Buckets, as_of: date | None = None,
                    lines: Headline | None = None) -> dict[tuple[str, str, str], Decimal]:
    """(sector, measure, month) -> amount, all settlement currencies together. ``lines``:
    the ``headline`` of the buckets when the caller has it already."""
    months: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    with localcontext(MONEY):
        for (sector, measure, month, _currency), amount in (
                lines if lines is not None else headline(buckets, as_of)).items():
            months[(sector, measure, month)] += amount
    return dict(months)


def totals(buckets: Buckets, as_of: date | None = None,
           lines: Headline | None = None) -> dict[tuple[str, str, str], Decimal]:
    """(sector, measure, period) -> amount for every period label, with sector ``all``."""
    result: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    with localcontext(MONEY):
        for (sector, measure, month), amount in headline_months(buckets, as_of, lines).items():
            for period in period_labels(month):
                result[(sector, measure, period)] += amount
                result[("all", measure, period)] += amount
    return dict(result)


def monthly_series(buckets: Buckets, sector: str, measure: str,
                   as_of: date | None = None, lines: Headline | None = None
                   ) -> dict[str, Decimal]:
    """month -> amount for one sector (or ``all``) and measure."""
    series: dict[str, Decimal] = defaultdict(Decimal)
    with localcontext(MONEY):
        for (flow_sector, flow_measure, month), amount in headline_months(
                buckets, as_of, lines).items():
            if flow_measure == measure and sector in ("all", flow_sector):
                series[month] += amount
    return dict(series)


def settlement(buckets: Buckets, sector: str = "all", as_of: date | None = None,
               lines: Headline | None = None) -> dict[tuple[str, str], Decimal]:
    """(month, currency) -> USD value settled in that currency, for value_usd flows."""
    result: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with localcontext(MONEY):
        for (flow_sector, measure, month, currency), amount in (
                lines if lines is not None else headline(buckets, as_of)).items():
            if measure == VALUE and sector in ("all", flow_sector):
                result[(month, currency)] += amount
    return dict(result)


def settlement_shares(buckets: Buckets, as_of: date | None = None,
                      lines: Headline | None = None) -> dict[tuple[str, str], Decimal]:
    """(period, currency) -> share of the period's USD value settled in that currency."""
    by_period: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    with localcontext(MONEY):
        for (month, currency), amount in settlement(buckets, "all", as_of, lines).items():
            for period in period_labels(month):
                by_period[period][currency] += amount
        shares = {}
        for period, currencies in by_period.items():
            total = sum(currencies.values(), Decimal(0))
            for currency, amount in currencies.items():
                shares[(period, currency)] = amount / total if total else Decimal(0)
    return shares


def month_headline(month: str, sums: Buckets) -> Headline:
    """``headline`` of one whole month, from its sums over the days (``month_sums``)."""
    by_route: dict[tuple[str, str, str], dict[str, dict[str, Decimal]]] = defaultdict(dict)
    for key, text in sums.items():
        sector, measure, route, role, currency = key.split("|")
        by_route[(sector, measure, route)].setdefault(role, {})[currency] = Decimal(text)
    result: Headline = defaultdict(Decimal)
    with localcontext(MONEY):
        for (sector, measure, _route), roles in by_route.items():
            chosen = roles["importer"] if "importer" in roles else roles["exporter"]
            for currency, amount in chosen.items():
                result[(sector, measure, month, currency)] += amount
    return dict(result)


class HeadlineCache:
    """The ``headline`` of ledgers, recomputing only the months that changed.

    The mirror rule works within a route and month, so a ledger's headline is the sum of
    its months' headlines, and a whole month's headline needs only its sums over the days.
    Every change of a month moves its position (see ``apply_change``), and the fold is
    deterministic, so a cached month is current while its position is the one it was
    computed at.
    """

    def __init__(self) -> None:
        self._months: dict[tuple[str, str], tuple[list[int], Headline]] = {}

    def forget(self, pair: str) -> None:
        for key in [key for key in self._months if key[0] == pair]:
            del self._months[key]

    def lines(self, ledger: JSON, as_of: date | None = None) -> Headline:
        """``headline(buckets_of(ledger), as_of)``."""
        limit = as_of.isoformat()[:7] if as_of else None
        result: Headline = defaultdict(Decimal)
        with localcontext(MONEY):
            positions = ledger["month_positions"]
            for month, sums in ledger["month_sums"].items():
                if limit is not None and month >= limit:
                    if month == limit:  # partly after as_of: from the days, not cached
                        for line, amount in headline(ledger["months"][month], as_of).items():
                            result[line] += amount
                    continue
                cached = self._months.get((ledger["pair"], month))
                if cached is None or cached[0] != positions[month]:
                    cached = self._months[(ledger["pair"], month)] = (
                        positions[month], month_headline(month, sums))
                for line, amount in cached[1].items():
                    result[line] += amount
        return dict(result)


KNOWN_SECTORS = (*SECTORS, "all")
