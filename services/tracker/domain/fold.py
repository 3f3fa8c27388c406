"""One step of the fold for each kind of ledger-input message, over any key-value store.

The Faust agents run these steps against tables; ``replay`` runs them against plain dicts,
which is how ``tracker reconcile``, the tests and the benchmark baseline compute the
figures the live service must show.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain import reference as ref
from services.tracker.domain.flows import Flow, flow_of
from services.tracker.domain.fx import rate_on
from services.tracker.domain.ledger import (
    JSON,
    Additions,
    Position,
    RootEntry,
    Touched,
    add_all,
    add_pending,
    alias_root,
    alias_target,
    apply_change,
    compact_root,
    contribution_of,
    empty_ledger,
    is_after,
    record,
    records_events,
    releasable,
)
from services.tracker.domain.validation import Kind, validate
from services.tracker.errors import InvalidEventError


class Store(Protocol):
    """The keys one partition of the fold reads and writes. ``in_place``: the store owns
    its values, so a step may change them instead of copying them."""

    @property
    def in_place(self) -> bool: ...

    def reference(self) -> JSON: ...
    def set_reference(self, value: JSON) -> None: ...
    def ledger(self, pair: str) -> JSON | None: ...
    def set_ledger(self, pair: str, value: JSON) -> None: ...
    def root(self, key: str) -> RootEntry | None: ...
    def set_root(self, key: str, value: RootEntry) -> None: ...
    def pairs_with_pending(self) -> Iterable[str]: ...

    def touched(self, pair: str) -> Touched | None:
        """Where to note the bucket keys a change touches in a pair's ledger, for a store
        that writes just those; None for one that does not need to know."""
        ...


def root_of(store: Store, flow: Flow) -> tuple[str, RootEntry | None]:
    """The key and entry of the original event; a correction of a correction resolves to
    it when the correction it names has been seen (``corrects`` should name the original).
    """
    key = f"{flow.pair}/{flow.root_id}"
    entry = store.root(key)
    target = alias_target(entry)
    return (key, entry) if target is None else (target, store.root(target))


def apply_flow(store: Store, flow: Flow, position: Position,
               released_from: Position | None = None) -> str:
    """Fold one transaction; returns ``applied``/``corrected``/``superseded``/``duplicate``
    or ``pending`` (no FX rate yet). ``released_from`` is the log position of a pending
    flow that a rate now lets through at ``position``."""
    ledger = store.ledger(flow.pair) or empty_ledger(flow.pair)
    rate = rate_on(store.reference()["fx"], flow.currency, flow.day)
    if rate is None:
        store.set_ledger(flow.pair, add_pending(ledger, flow, position))
        return "pending"
    key, entry = root_of(store, flow)
    entry, change = record(entry, flow, contribution_of(flow, rate), position, released_from)
    store.set_root(key, entry)
    own_key = f"{flow.pair}/{flow.event_id}"
    # Lets a later correction that names this one find the same root - unless one that
    # names it came first and keeps a root of its own there, which an alias would lose.
    if flow.is_correction and own_key != key and not records_events(store.root(own_key)):
        store.set_root(own_key, alias_root(key))
    released = flow if released_from is not None else None
    store.set_ledger(flow.pair, apply_change(ledger, change, position, released, store.in_place,
                                             store.touched(flow.pair)))
    return change.outcome


def apply_flows(store: Store, flows: Sequence[Flow], offset: int, start: int = 0) -> list[str]:
    """Fold flows that sit together in one ledger-input record, at (offset, start),
    (offset, start + 1), ...: the outcomes and state of ``apply_flow`` on each in turn.

    The common flow - new, no correction, a known rate, a ledger that has not seen this
    position - only adds to buckets: its root entry is set at once and its contribution
    gathered per pair (``Additions``), added to the ledger once per run. Any other flow
    goes through ``apply_flow`` after what was gathered for its pair is added.
    """
    if not store.in_place:  # gathering changes the ledgers in place
        return [apply_flow(store, flow, (offset, index))
                for index, flow in enumerate(flows, start)]
    rates = store.reference()["fx"]
    gathered: dict[str, Additions] = {}
    outcomes: list[str] = []
    for index, flow in enumerate(flows, start):
        position = (offset, index)
        pair = flow.pair
        additions = gathered.get(pair)
        key = f"{pair}/{flow.root_id}"
        rate = None if flow.is_correction or store.root(key) is not None else rate_on(
            rates, flow.currency, flow.day)
        if rate is not None and additions is None:
            ledger = store.ledger(pair)
            if ledger is None or is_after(position, ledger["position"]):
                additions = gathered[pair] = Additions()
        if rate is None or additions is None:
            _add_gathered(store, pair, gathered.pop(pair, None))
            outcomes.append(apply_flow(store, flow, position))
            continue
        contribution = contribution_of(flow, rate)
        store.set_root(key, compact_root(flow.event_id, position, contribution))
        additions.add(contribution, flow.month, position)
        outcomes.append("applied")
    for pair, additions in gathered.items():
        _add_gathered(store, pair, additions)
    return outcomes


def _add_gathered(store: Store, pair: str, additions: Additions | None) -> None:
    if additions is None:
        return
    ledger = store.ledger(pair) or empty_ledger(pair)
    add_all(ledger, additions, store.touched(pair))
    store.set_ledger(pair, ledger)


def apply_fx_rate(store: Store, event: FxRatePublished,
                  position: Position) -> list[tuple[str, str]]:
    """Store a rate, then fold the pending flows it unblocks, each at the rate's position
    followed by its own parked position.

    Returns (pair, outcome) for every released flow. Replaying the same rate message
    releases the same flows at the same positions, so nothing is applied twice.
    """
    store.set_reference(ref.apply_fx_rate(store.reference(), event, position))
    rates = store.reference()["fx"]
    released: list[tuple[str, str]] = []
    for pair in sorted(store.pairs_with_pending()):
        ledger = store.ledger(pair)
        for flow, parked_at in releasable(ledger, rates) if ledger else []:
            # Derived from where the flow was parked, so a replay of this rate message gives
            # every flow the same position again.
            released.append((pair, apply_flow(store, flow, (*position, *parked_at),
                                              released_from=parked_at)))
    return released


def apply_commitment(store: Store, event: CommitmentChanged, position: Position) -> None:
    store.set_reference(ref.apply_commitment(store.reference(), event, position))


@dataclass
class MemoryStore:
    """The whole fold in dicts: one partition holding every key."""

    reference_value: JSON = field(default_factory=ref.empty_reference)
    ledgers: dict[str, JSON] = field(default_factory=dict)
    roots: dict[str, RootEntry] = field(default_factory=dict)
    in_place: bool = False

    def reference(self) -> JSON:
        return self.reference_value

    def set_reference(self, value: JSON) -> None:
        self.reference_value = value

    def ledger(self, pair: str) -> JSON | None:
        return self.ledgers.get(pair)

    def set_ledger(self, pair: str, value: JSON) -> None:
        self.ledgers[pair] = value

    def root(self, key: str) -> RootEntry | None:
        return self.roots.get(key)

    def set_root(self, key: str, value: RootEntry) -> None:
        self.roots[key] = value

    def pairs_with_pending(self) -> Iterator[str]:
        return (pair for pair, ledger in self.ledgers.items() if ledger["pending"])

    def touched(self, pair: str) -> Touched | None:
        return None


@dataclass
class ReplayReport:
    store: MemoryStore
    outcomes: dict[str, int]
    dead_letters: list[tuple[str, str]]  # (event id or "?", reason)


def apply_event(store: Store, kind: Kind, event: object, offset: int) -> str:
    """Fold one validated event at ``offset``; returns its outcome."""
    position = (offset, 0)
    if isinstance(event, FxRatePublished):
        apply_fx_rate(store, event, position)
        return "applied"
    if isinstance(event, CommitmentChanged):
        apply_commitment(store, event, position)
        return "applied"
    return apply_flow(store, flow_of(event), position)  # type: ignore[arg-type]


def replay(records: Iterable[tuple[Kind, bytes]], max_bytes: int = 64 * 1024) -> ReplayReport:
    """Fold raw records in order, as the service would, into a fresh ``MemoryStore``."""
    store = MemoryStore()
    outcomes: dict[str, int] = {}
    dead: list[tuple[str, str]] = []
    for offset, (kind, raw) in enumerate(records):
        try:
            event = validate(kind, raw, max_bytes)
        except InvalidEventError as error:
            dead.append(("?", error.reason))
            outcome = "dead_letter"
        else:
            outcome = apply_event(store, kind, event, offset)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # Released pending flows are counted where they were parked; report what is left.
    return ReplayReport(store, outcomes, dead)

