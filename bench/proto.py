"""What the benchmark's child processes share: standard library only, because the peer runs
in its own virtualenv (see bench/peer-requirements.txt) without the project's packages."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

PREFIX = "BENCH "


def emit(kind: str, **fields: Any) -> None:
    """One protocol line on stdout for the parent: ``BENCH <kind> <json>``."""
    sys.stdout.write(f"{PREFIX}{kind} {json.dumps(fields)}\n")
    sys.stdout.flush()


def parse_line(line: str) -> tuple[str, dict[str, Any]] | None:
    if not line.startswith(PREFIX):
        return None
    kind, _, payload = line[len(PREFIX):].partition(" ")
    return kind, json.loads(payload or "{}")


def vm_hwm_kib(pid: int | str = "self") -> int | None:
    """Peak resident set size (VmHWM) of a process, in KiB, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU time of a process (all threads), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies: list[float]) -> dict[str, float]:
    values = sorted(latencies)
    return {"count": len(values), "p50": quantile(values, 0.50), "p99": quantile(values, 0.99),
            "max": values[-1] if values else math.nan}
