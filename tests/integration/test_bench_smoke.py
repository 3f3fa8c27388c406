"""`python -m bench.run --quick` end to end, so the benchmark (issue 7) cannot rot: it starts
its own broker, runs every phase on small sizes and prints the table and the final line."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FINAL = re.compile(r"^ratio_vs_raw=(\S+) ratio_vs_peer=(\S+) p99_ms=(\S+) "
                   r"restart_vs_peer=(\S+) cpu_vs_peer=(\S+)$")
ROWS = ("throughput", "throughput, from /health/ 200", "throughput, two workers", "CPU per event",
        "latency p50, broker append -> table update",
        "latency p99, broker append -> table update",
        "latency p50, send -> value visible at /metrics", "time to ready, cold start",
        "time to ready, restart with", "time to ready, restart, local state kept",
        "peak resident memory (VmHWM)")

pytestmark = pytest.mark.integration


def test_quick_benchmark_prints_the_table_and_the_final_line(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick",
                           "--workdir", str(tmp_path / "bench")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240,
                          check=False)
    output = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{output[-6000:]}\n{done.stderr[-4000:]}"
    for row in ROWS:
        assert row in output, f"row {row!r} missing:\n{output[-6000:]}"
    last = output.rstrip("\n").splitlines()[-1]
    match = FINAL.match(last)
    assert match, f"last line is not the summary: {last!r}"
    raw, peer, p99, restart, cpu = match.groups()
    assert float(raw) > 0 and math.isfinite(float(raw))
    assert float(p99) > 0 and math.isfinite(float(p99))
    if peer == "nan":  # allowed only when the output says why the peer could not run
        assert "peer unavailable:" in output, output[-4000:]
        assert restart == cpu == "nan"
    else:
        for ratio in (peer, restart, cpu):
            assert float(ratio) > 0 and math.isfinite(float(ratio))
    print(f"bench --quick took {time.monotonic() - started:.0f} s")
