"""ops/grafana: the committed dashboard JSON is exactly what build_dashboard.py generates,
every panel queries Prometheus through the provisioned data source, and the panels the
design asks for are there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.grafana import build_dashboard

CONTRACT_METRICS = (
    "tracker_commitment_target", "tracker_commitment_achieved",
    "tracker_commitment_progress_ratio",
    "tracker_commitment_projected_completion_timestamp_seconds", "tracker_total_usd",
    "tracker_events_total", "tracker_event_lag_seconds", "tracker_processing_latency_seconds",
)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(build_dashboard.dashboard_json()))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_committed_json_is_fresh() -> None:
    committed = build_dashboard.OUTPUT.read_text()
    assert committed == build_dashboard.dashboard_json(), (
        f"{build_dashboard.OUTPUT} is stale: run `make dashboard` and commit it")
    assert build_dashboard.main(["--check"]) == 0


def test_check_flags_a_stale_file(tmp_path: Any) -> None:
    stale = tmp_path / "tracker.json"
    stale.write_text("{}\n")
    assert build_dashboard.main(["--check", "--output", str(stale)]) == 1
    assert build_dashboard.main(["--output", str(stale)]) == 0
    assert build_dashboard.main(["--check", "--output", str(stale)]) == 0


def test_generation_is_deterministic() -> None:
    assert build_dashboard.dashboard_json() == build_dashboard.dashboard_json()


def test_every_panel_has_a_promql_target_on_the_provisioned_source(
        dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == build_dashboard.DASHBOARD_UID
    for panel in panels(dashboard):
        targets = panel.get("targets") or []
        assert targets, f"panel {panel['title']!r} has no query"
        for target in targets:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]


def test_panel_ids_are_unique_and_panels_fit_the_grid(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_designed_panels_are_there(dashboard: dict[str, Any]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for panel in panels(dashboard):
        by_type.setdefault(panel["type"], []).append(panel)

    def exprs(panel: dict[str, Any]) -> str:
        return " ".join(target["expr"] for target in panel["targets"])

    assert any("tracker_commitment_progress_ratio" in exprs(p) for p in by_type["bargauge"])
    assert any("tracker_commitment_achieved" in exprs(p) and "tracker_commitment_target"
               in exprs(p) for p in by_type["timeseries"])
    assert any("tracker_total_usd" in exprs(p) for p in by_type["table"] + by_type["barchart"])
    (projected,) = [p for p in panels(dashboard)
                    if "projected_completion_timestamp_seconds" in exprs(p)]
    assert projected["fieldConfig"]["defaults"]["unit"] == "dateTimeAsIso"
    assert "* 1000" in exprs(projected)
    health = " ".join(exprs(p) for p in panels(dashboard))
    for needle in ("rate(tracker_events_total", 'outcome="dead_letter"',
                   "histogram_quantile(0.99", "tracker_processing_latency_seconds_bucket",
                   "tracker_event_lag_seconds"):
        assert needle in health, needle


def test_promql_expressions_are_ready_for_prometheus() -> None:
    expressions = build_dashboard.promql_expressions("30s")
    assert len(expressions) == sum(len(p.get("targets", []))
                                   for p in build_dashboard.panels())
    assert not [e for e in expressions if "$" in e], "Grafana macros left in the PromQL"
    assert any("[30s]" in e for e in expressions)
    used = " ".join(expressions)
    for metric in CONTRACT_METRICS:
        assert metric in used, f"the dashboard never shows {metric}"
