"""What a benchmark run found and how it is printed: the figures (one row each, the tracker
against both baselines), the context lines, the honesty checks, the notes on how to read
them, and the final ``ratio_vs_raw=... cpu_vs_peer=...`` line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from bench.options import Options
from services.tracker.metrics import LATENCY_BUCKETS

NAN = math.nan

# The table's rows, top to bottom; a phase that did not run leaves its rows out.
ROW_ORDER = ("throughput", "throughput_ready", "throughput2", "cpu", "p50", "p99", "vis50",
             "vis99", "p50s", "p99s", "vis50s", "vis99s", "cold", "recovery", "recovery_kept",
             "rss", "rss_recovered")

HOW_TO_READ = [
    "throughput: tracker = events after its first ledger-input record / (first -> last "
    "record folded), both moments the send time of the record's root entries in the roots "
    "changelog, read back after the phase; raw = N / (partitions assigned -> last record "
    "returned by getmany); peer = (N-1) / (first -> last event through its stateful "
    "update). So none of the three counts its start. The tracker's row 'from /health/ 200' "
    "does: N / (worker /health/ 200 -> tracker_events_total for the trade topic reaches N; "
    "/metrics is scraped at most 5% of the time, at least every 0.5 s; the count stops at N, "
    "so the end is the first scrape after it, up to a pause late). Every "
    "reader is its own process (the tracker: a worker and its intake process); CPU is "
    "user+system time of those processes (the raw consumer and the peer: from just before "
    "they consume to their end, the peer's app start included; the tracker: from process "
    "start to the end of the phase, less what a worker and its intake spend starting on "
    "empty topics, measured just before), peak memory the sum of their peaks.",
    "the tracker does more per event than the peer: pydantic validation, a re-key through "
    "its internal ledger-input topic (a second produce and consume), correction history per "
    "event, Prometheus metrics, progress snapshots. The peer validates nothing and needs no "
    "re-key (the input is keyed by pair already). Both dedupe by event id and keep exact "
    "Decimal sums by pair and month; both write changelogs (at-least-once).",
    "append -> table update: the topics use LogAppendTime, so a record's timestamp is the "
    "broker's append time; the tracker's tracker_processing_latency_seconds histogram is "
    "read before and after the load window and quantiles come from the bucket deltas "
    f"(bucket bounds {', '.join(f'{bound * 1000:g}' for bound in LATENCY_BUCKETS)} ms). The "
    "baselines record now - append time per event exactly, after their fold (peer) or when "
    "getmany returns (raw), in the same steady load on their own topics.",
    "append -> table update is measured in a window with no scraping during the load; "
    "send -> visible at /metrics in a second window at the same rate: probe events (pair "
    "IS-NO, month 2026-01, used by nothing else) every 0.7-1.3 s inside the load, and a poller "
    "scraping /metrics while a probe is outstanding (back to back while it is young, then "
    "every quarter of its age) until tracker_total_usd for that pair and year includes it. "
    "That figure is an upper bound (just before send -> end of the "
    "first scrape showing it) and includes the scrape itself, which runs on the worker's "
    "event loop. The baselines publish nothing, so they have no such figure.",
    "when the offered rate is above the tracker's measured throughput, both windows are "
    "repeated at half that throughput (the average over the throughput phase; the cost per "
    "event grows with the state, so this rate can still queue late in a long run).",
    "time to ready of the tracker includes the Python start and Faust's start-up; the "
    "machine has 2 cores, and the broker, the benchmark and possibly other test runs share "
    "them (see the load averages), so figures vary between runs.",
]


@dataclass
class Figure:
    """One row: the tracker's value and the baselines' (NaN where there is none)."""

    label: str
    unit: str
    tracker: float = NAN
    raw: float = NAN
    peer: float = NAN
    note: str = ""
    digits: int = 1


@dataclass
class Check:
    """An honesty check: every event folded once, sums exact; a failed one fails the run."""

    what: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    figures: dict[str, Figure] = field(default_factory=dict)
    context: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    peer_problem: str | None = None
    profile: list[str] = field(default_factory=list)

    def figure(self, key: str, label: str, unit: str, digits: int = 1) -> Figure:
        """The row ``key``, created with this label, unit and precision on first use."""
        if key not in self.figures:
            self.figures[key] = Figure(label, unit, digits=digits)
        return self.figures[key]

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(what, ok, detail))

    def check_totals(self, what: str, live: dict[str, Decimal],
                     exact: dict[str, Decimal], detail: str = "") -> None:
        """Totals per pair against the exact sums; a failure says which way they are off."""
        off = {pair: live.get(pair, Decimal(0)) - exact.get(pair, Decimal(0))
               for pair in {*live, *exact}}
        above = [diff for diff in off.values() if diff > 0]
        below = [diff for diff in off.values() if diff < 0]
        summary = (f"{len(live)} pairs" if not above and not below else
                   f"{len(above)} pairs above by {sum(above, Decimal(0)):,} USD, "
                   f"{len(below)} below by {-sum(below, Decimal(0)):,} USD")
        self.check(what, not above and not below,
                   f"{summary}; {detail}" if detail else summary)

    def failed_checks(self) -> list[str]:
        return [check.what for check in self.checks if not check.ok]


def render(report: Report, options: Options, console: Console) -> None:
    """The table, the context, the checks, how to read it and the profile, if any."""
    peer_name = "peer (Quix Streams)"
    table = Table(title=f"Tracker benchmark ({options.events:,} events"
                        f"{', quick mode' if options.quick else ''})")
    for column, justify in (("measure", "left"), ("unit", "left"), ("tracker", "right"),
                            ("raw aiokafka", "right"), (peer_name, "right"),
                            ("tracker ÷ raw", "right"), ("tracker ÷ peer", "right"),
                            ("how", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for key in ROW_ORDER:
        figure = report.figures.get(key)
        if figure is None:
            continue
        ratios = [_ratio(figure.tracker, figure.raw), _ratio(figure.tracker, figure.peer)]
        table.add_row(figure.label, figure.unit, _fmt(figure.tracker, figure.digits),
                      _fmt(figure.raw, figure.digits), _fmt(figure.peer, figure.digits),
                      *[_fmt(x, 4 if x < 0.1 else 2) for x in ratios], figure.note)
    console.print(table)
    for line in report.context:
        console.print(f"  {line}")
    console.print("Checks:")
    for check in report.checks:
        mark = "[green]ok[/green]" if check.ok else "[red]FAILED[/red]"
        console.print(f"  {mark} {check.what}" + (f" ({check.detail})" if check.detail else ""))
    if report.peer_problem:
        console.print(f"[red]peer unavailable:[/red] {report.peer_problem} — its columns are "
                      "empty and ratio_vs_peer is nan; nothing was substituted.")
    console.print("How to read it:")
    for note in HOW_TO_READ + report.notes:
        console.print(f"  - {note}")
    if report.profile:
        console.print("Profile of the tracker worker during the throughput phase (py-spy):")
        for line in report.profile:
            console.print(f"  {line}", markup=False, highlight=False)


def final_line(report: Report) -> str:
    """``ratio_vs_raw=<x> ratio_vs_peer=<y> p99_ms=<z> restart_vs_peer=<r> cpu_vs_peer=<c>``:
    r is the larger of the two restart ratios (local state wiped and kept); r and c are the
    tracker divided by the peer; a figure without a value is ``nan``."""
    figures = report.figures
    throughput = figures["throughput"]
    p99 = figures["p99"].tracker
    restarts = [_ratio(figures[key].tracker, figures[key].peer)
                for key in ("recovery", "recovery_kept")]
    restart = NAN if any(map(math.isnan, restarts)) else max(restarts)
    cpu = figures["cpu"]
    return (f"ratio_vs_raw={_num(_ratio(throughput.tracker, throughput.raw))} "
            f"ratio_vs_peer={_num(_ratio(throughput.tracker, throughput.peer))} "
            f"p99_ms={_num(p99, 1)} "
            f"restart_vs_peer={_num(restart, 3)} "
            f"cpu_vs_peer={_num(_ratio(cpu.tracker, cpu.peer), 3)}")


def _fmt(value: float, digits: int) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(a: float, b: float) -> float:
    if any(x is None or math.isnan(x) for x in (a, b)) or b == 0:
        return NAN
    return a / b


def _num(value: float, digits: int = 6) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"
