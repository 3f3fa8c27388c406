"""The Grafana dashboard of the commitment tracker, as code (grafana-foundation-sdk).

``ops/grafana/dashboards/tracker.json`` is generated from this module and committed, so that
Grafana provisions it without Python. Regenerate after any change here:

    make dashboard            # = python -m ops.grafana.build_dashboard
    python -m ops.grafana.build_dashboard --check   # exit 1 if the committed JSON is stale

Every query reads only the contract metrics (docs/contract.md, "Metrics"). Commitment and total
gauges are exported by the worker that owns the pair, so during a rebalance two workers may
briefly export the same series with different ``instance`` labels: the panels take
``max by (...)`` over the contract labels so a handover never shows a commitment twice.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import barchart, bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prom_model

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "tracker.json"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")
DASHBOARD_UID = "commitment-tracker"

# Grafana replaces these macros before it sends a query; anyone evaluating the expressions
# directly against Prometheus (the integration test) must do the same.
RATE_INTERVAL = "$__rate_interval"

COMMITMENT = "commitment_id, pair, sector, metric"


def _query(expr: str, ref_id: str, legend: str | None = None, *, instant: bool = False,
           table_format: bool = False) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend is not None:
        query = query.legend_format(legend)
    query = query.instant() if instant else query.range()
    if table_format:
        query = query.format(prom_model.PromQueryFormat.TABLE)
    return query


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=value, color=color) for value, color in steps]))


def _organize(exclude: list[str], rename: dict[str, str]) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(
        id_val="organize",
        options={"excludeByName": dict.fromkeys(exclude, True), "renameByName": rename})


# -- panels ----------------------------------------------------------------------------------


def progress_ratio() -> bargauge.Panel:
    return (bargauge.Panel().id(2).title("Progress per commitment")
            .description("tracker_commitment_progress_ratio: achieved / target. 1 = met.")
            .datasource(DATASOURCE).height(9).span(12)
            .with_target(_query(f"max by ({COMMITMENT}) (tracker_commitment_progress_ratio)",
                                "A", "{{commitment_id}}", instant=True))
            .unit("percentunit").min(0).max(1).decimals(1)
            .thresholds(_thresholds((None, "red"), (0.5, "orange"), (0.8, "yellow"),
                                    (1, "green")))
            .display_mode(common.BarGaugeDisplayMode.GRADIENT)
            .orientation(common.VizOrientation.HORIZONTAL)
            .show_unfilled(True)
            .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"])
                            .values(False)))


def projected_completion() -> table.Panel:
    return (table.Panel().id(3).title("Projected completion")
            .description("tracker_commitment_projected_completion_timestamp_seconds (x1000 for "
                         "Grafana's millisecond time unit). A commitment missing here has no "
                         "growth to project from (see the CommitmentNoProjection alert).")
            .datasource(DATASOURCE).height(9).span(12)
            .with_target(_query(
                f"max by ({COMMITMENT}) "
                "(tracker_commitment_projected_completion_timestamp_seconds) * 1000",
                "A", instant=True, table_format=True))
            .with_transformation(_organize(["Time"], {"Value": "projected completion"}))
            .unit("dateTimeAsIso"))


def achieved_vs_target_usd() -> timeseries.Panel:
    return (timeseries.Panel().id(4).title("Achieved vs target (USD commitments)")
            .description("tracker_commitment_achieved and tracker_commitment_target, "
                         "metric=value_usd. Annual commitments: trailing twelve months.")
            .datasource(DATASOURCE).height(9).span(12)
            .with_target(_query(
                f'max by ({COMMITMENT}) (tracker_commitment_achieved{{metric="value_usd"}})',
                "A", "{{commitment_id}} achieved"))
            .with_target(_query(
                f'max by ({COMMITMENT}) (tracker_commitment_target{{metric="value_usd"}})',
                "B", "{{commitment_id}} target"))
            .unit("currencyUSD").min(0)
            .legend(common_builder.VizLegendOptions()
                    .display_mode(common.LegendDisplayMode.TABLE)
                    .placement(common.LegendPlacement.BOTTOM).show_legend(True)
                    .calcs(["lastNotNull"])))


def achieved_vs_target_volume() -> timeseries.Panel:
    return (timeseries.Panel().id(5).title("Achieved vs target (volume commitments)")
            .description("tracker_commitment_achieved and tracker_commitment_target for "
                         "commitments in a quantity unit (the metric label, e.g. bbl).")
            .datasource(DATASOURCE).height(9).span(12)
            .with_target(_query(
                f'max by ({COMMITMENT}) (tracker_commitment_achieved{{metric!="value_usd"}})',
                "A", "{{commitment_id}} achieved ({{metric}})"))
            .with_target(_query(
                f'max by ({COMMITMENT}) (tracker_commitment_target{{metric!="value_usd"}})',
                "B", "{{commitment_id}} target ({{metric}})"))
            .unit("short").min(0)
            .legend(common_builder.VizLegendOptions()
                    .display_mode(common.LegendDisplayMode.TABLE)
                    .placement(common.LegendPlacement.BOTTOM).show_legend(True)
                    .calcs(["lastNotNull"])))


def fiscal_year_totals() -> barchart.Panel:
    return (barchart.Panel().id(7).title("Totals by sector, Indian fiscal year (USD)")
            .description("tracker_total_usd for FY periods, one bar per sector; `all` (the "
                         "sum of the three sectors) is left out so bars are not counted twice.")
            .datasource(DATASOURCE).height(10).span(12)
            .with_target(_query(
                'sum by (sector, period) '
                '(max by (pair, sector, period) (tracker_total_usd{period=~"FY.*",sector!="all"}))',
                "A", instant=True, table_format=True))
            .with_transformation(model.DataTransformerConfig(
                id_val="groupingToMatrix",
                options={"columnField": "sector", "rowField": "period", "valueField": "Value"}))
            .with_transformation(model.DataTransformerConfig(
                id_val="sortBy", options={"sort": [{"field": "period\\sector"}]}))
            .x_field("period\\sector")
            .stacking(common.StackingMode.NORMAL)
            .unit("currencyUSD")
            .legend(common_builder.VizLegendOptions().show_legend(True)
                    .display_mode(common.LegendDisplayMode.LIST)
                    .placement(common.LegendPlacement.BOTTOM)))


def totals_table() -> table.Panel:
    return (table.Panel().id(8).title("Totals by pair, sector and period (USD)")
            .description("tracker_total_usd: running totals under the mirror rule, for "
                         "calendar years, Indian fiscal years and months.")
            .datasource(DATASOURCE).height(10).span(12)
            .with_target(_query("max by (pair, sector, period) (tracker_total_usd)", "A",
                                instant=True, table_format=True))
            .with_transformation(_organize(["Time"], {"Value": "total"}))
            .sort_by([common_builder.TableSortByFieldState().display_name("period")
                      .desc(True)])
            .unit("currencyUSD").filterable(True))


def event_rates() -> timeseries.Panel:
    return (timeseries.Panel().id(10).title("Events by topic and outcome")
            .description("rate(tracker_events_total): applied, duplicate, dead_letter, "
                         "pending (waiting for an FX rate).")
            .datasource(DATASOURCE).height(8).span(12)
            .with_target(_query(
                f"sum by (topic, outcome) (rate(tracker_events_total[{RATE_INTERVAL}]))",
                "A", "{{topic}} {{outcome}}"))
            .unit("ops").min(0))


def dead_letters() -> stat.Panel:
    return (stat.Panel().id(11).title("Dead letters (since worker start)")
            .description("tracker_events_total{outcome=\"dead_letter\"}, summed over workers "
                         "and topics. The records are on the dead-letters topic.")
            .datasource(DATASOURCE).height(8).span(4)
            .with_target(_query('sum(tracker_events_total{outcome="dead_letter"}) or vector(0)',
                                "A", instant=True))
            .unit("short")
            .thresholds(_thresholds((None, "green"), (1, "orange")))
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE))


def workers_up() -> stat.Panel:
    return (stat.Panel().id(12).title("Workers up")
            .description("up{job=\"tracker\"}: workers Prometheus can scrape.")
            .datasource(DATASOURCE).height(8).span(4)
            .with_target(_query('sum(up{job="tracker"})', "A", instant=True))
            .unit("short")
            .thresholds(_thresholds((None, "red"), (1, "green")))
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE))


def pending_events() -> stat.Panel:
    return (stat.Panel().id(13).title("Events that waited for an FX rate")
            .description("tracker_events_total{outcome=\"pending\"}: events that arrived "
                         "before a rate for their currency (applied once it arrives), "
                         "since worker start.")
            .datasource(DATASOURCE).height(8).span(4)
            .with_target(_query('sum(tracker_events_total{outcome="pending"}) or vector(0)',
                                "A", instant=True))
            .unit("short")
            .graph_mode(common.BigValueGraphMode.NONE))


def processing_latency() -> timeseries.Panel:
    return (timeseries.Panel().id(14).title("Processing latency (broker append to table)")
            .description("histogram_quantile over tracker_processing_latency_seconds.")
            .datasource(DATASOURCE).height(8).span(12)
            .with_target(_query(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(tracker_processing_latency_seconds_bucket[{RATE_INTERVAL}])))",
                "A", "p99"))
            .with_target(_query(
                "histogram_quantile(0.5, sum by (le) "
                f"(rate(tracker_processing_latency_seconds_bucket[{RATE_INTERVAL}])))",
                "B", "p50"))
            .unit("s").min(0))


def event_lag() -> timeseries.Panel:
    return (timeseries.Panel().id(15).title("Event lag (event time of applied events to now)")
            .description("tracker_event_lag_seconds: how old the data being applied is. "
                         "Back-filled history (the sample) is years old by design; live "
                         "feeds should stay within the reporting delay of their source.")
            .datasource(DATASOURCE).height(8).span(12)
            .with_target(_query(
                "histogram_quantile(0.5, sum by (le) "
                f"(rate(tracker_event_lag_seconds_bucket[{RATE_INTERVAL}])))",
                "A", "p50"))
            .with_target(_query(
                f"sum(rate(tracker_event_lag_seconds_sum[{RATE_INTERVAL}])) / "
                f"sum(rate(tracker_event_lag_seconds_count[{RATE_INTERVAL}]))",
                "B", "mean"))
            .unit("s").min(0))


def consumer_lag() -> timeseries.Panel:
    return (timeseries.Panel().id(16).title("Consumer lag per topic (messages)")
            .description("Faust's own health, exported by its PrometheusMonitor: the end "
                         "offset minus the committed offset, summed over each topic's "
                         "partitions (per partition: drop the outer sum).")
            .datasource(DATASOURCE).height(8).span(12)
            .with_target(_query(
                "sum by (topic) (max by (topic, partition) "
                "(tracker_faust_topic_partition_end_offset) - max by (topic, partition) "
                "(tracker_faust_topic_partition_offset_commited))", "A", "{{topic}}"))
            .unit("short").min(0))


def rebalances() -> timeseries.Panel:
    return (timeseries.Panel().id(17).title("Rebalances and table recoveries")
            .description("tracker_faust_total_rebalances: rebalances since start; "
                         "..._recovering: those still recovering tables from changelogs.")
            .datasource(DATASOURCE).height(8).span(12)
            .with_target(_query("max(tracker_faust_total_rebalances)", "A", "rebalances"))
            .with_target(_query("max(tracker_faust_total_rebalances_recovering)", "B",
                                "recovering"))
            .unit("short").min(0))


def build() -> dash.Dashboard:
    return (dash.Dashboard("Commitment tracker").uid(DASHBOARD_UID)
            .description("Progress of bilateral trade, energy and defense commitments, and "
                         "the health of the tracker pipeline. Generated by "
                         "ops/grafana/build_dashboard.py: edit that, not the JSON.")
            .tags(["tracker", "kafka", "faust"])
            .editable()
            .time("now-6h", "now").refresh("30s").timezone("utc")
            .tooltip(model.DashboardCursorSync.CROSSHAIR)
            .with_row(dash.Row("Commitments").id(1))
            .with_panel(progress_ratio())
            .with_panel(projected_completion())
            .with_panel(achieved_vs_target_usd())
            .with_panel(achieved_vs_target_volume())
            .with_row(dash.Row("Totals").id(6))
            .with_panel(fiscal_year_totals())
            .with_panel(totals_table())
            .with_row(dash.Row("Pipeline health").id(9))
            .with_panel(event_rates())
            .with_panel(dead_letters())
            .with_panel(workers_up())
            .with_panel(pending_events())
            .with_panel(processing_latency())
            .with_panel(event_lag())
            .with_panel(consumer_lag())
            .with_panel(rebalances()))


# -- outputs ---------------------------------------------------------------------------------


def dashboard_json() -> str:
    """The dashboard as committed: stable key order, two-space indent, final newline."""
    return json.dumps(build().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def panels() -> list[dict[str, Any]]:
    """Every panel of the generated JSON (rows included), in order."""
    return list(json.loads(dashboard_json())["panels"])


def _targets() -> Iterator[dict[str, Any]]:
    for panel in panels():
        yield from panel.get("targets", [])


def promql_expressions(rate_interval: str = "1m") -> list[str]:
    """The PromQL of every dashboard query, with Grafana's ``$__rate_interval`` replaced by
    ``rate_interval`` so it can be sent to Prometheus as it is."""
    return [str(target["expr"]).replace(RATE_INTERVAL, rate_interval) for target in _targets()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed JSON differs from the generated one")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    fresh = dashboard_json()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != fresh:
            print(f"{args.output} is stale: run `make dashboard`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(fresh)
    print(f"wrote {args.output} ({len(panels())} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
