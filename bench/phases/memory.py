"""Peak resident memory (VmHWM, from /proc) of every process: the baselines report theirs at
the end of their throughput run; the tracker's is read after its throughput and latency
phases, and again after a restart with keys in the changelogs."""

from __future__ import annotations

from bench.report import Figure, Report
from bench.session import Session
from bench.worker import TrackerWorker


def peak_memory_figure(report: Report) -> Figure:
    return report.figure("rss", "peak resident memory (VmHWM)", "MiB")


def record_tracker(session: Session, worker: TrackerWorker) -> None:
    peak_memory_figure(session.report).tracker = worker.peak_rss_mib()


def record_tracker_after_restart(session: Session, worker: TrackerWorker, keys: int) -> None:
    session.report.figure("rss_recovered", f"peak memory after restart with {keys:,} keys",
                          "MiB").tracker = worker.peak_rss_mib()
