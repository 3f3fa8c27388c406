"""``summarise``: the provenance of a figure, read from the root entries of a replay."""

from __future__ import annotations

import copy

from services.tracker.domain.flows import flow_of
from services.tracker.domain.fold import apply_flow
from services.tracker.domain.ledger import expanded
from services.tracker.domain.validation import validate
from services.tracker.explain import Replayed, figure_for_period, summarise


def replayed_of(make, records) -> Replayed:
    replayed = Replayed()
    for offset, (kind, raw) in enumerate(records):
        flow = flow_of(validate(kind, raw, 64 * 1024))  # type: ignore[arg-type]
        replayed.sources.setdefault(flow.event_id, []).append(
            {"topic": f"{kind}s", "partition": 0, "offset": offset})
        if apply_flow(replayed.store, flow, (offset, 0)) == "duplicate":
            replayed.duplicates.append(flow.event_id)
    return replayed


def test_compact_and_full_root_entries_explain_a_figure_alike(make):
    replayed = replayed_of(make, [
        make.trade("t1", amount="100"),
        make.trade("t2", amount="50"),
        make.trade("c2", amount="40", corrects="t2"),
        make.trade("c3", amount="30", corrects="c2"),
        make.trade("t3", amount="7"),
        make.trade("t3", amount="7"),
        make.trade("t4", amount="9", reporter="RU", partner="IN", direction="export"),
    ])
    assert sum(isinstance(entry, list) for entry in replayed.store.roots.values()) == 3
    whole = copy.deepcopy(replayed)
    whole.store.roots = {key: expanded(entry) for key, entry in whole.store.roots.items()}
    figure = figure_for_period("IN-RU", "trade", "value_usd", "2024", None)

    summary = summarise(replayed, figure)
    assert summary == summarise(whole, figure)
    assert summary["value"] == "137"  # t1 + c3 + t3; the exporter's t4 hidden
    assert [c["event_id"] for c in summary["largest"]] == ["t1", "c3", "t4", "t3"]
    assert [c["event_id"] for c in summary["corrections"]] == ["c2", "c3"]
    assert [d["event_id"] for d in summary["duplicates_ignored"]] == ["t3"]
