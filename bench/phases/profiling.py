"""``--profile DIR``: py-spy samples the tracker worker during the throughput phase; the raw
stacks go to DIR and a summary (bench.spy) to the report."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.session import Session
from bench.spy import summarise

STACKS_FILE = "tracker-throughput.txt"


@contextmanager
def sampled(session: Session, pid: int) -> Iterator[None]:
    """Sample process ``pid`` and its children (the intake) at 100 Hz inside the block when
    ``--profile`` is given."""
    directory = session.options.profile
    profiler = _start(session, pid, directory) if directory is not None else None
    try:
        yield
    finally:
        if profiler is not None and directory is not None:
            _stop(session, profiler, directory)


def _start(session: Session, pid: int, directory: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "100",
                                 "--format", "raw", "--nonblocking", "--subprocesses",
                                 "--output", str(directory / STACKS_FILE)],
                                stdout=subprocess.DEVNULL,
                                stderr=(session.workdir / "py-spy.log").open("ab"))
    except OSError as error:
        session.report.notes.append(f"profiling skipped: {error}")
        return None


def _stop(session: Session, profiler: subprocess.Popen[bytes], directory: Path) -> None:
    profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        profiler.wait(60)
    except subprocess.TimeoutExpired:
        profiler.kill()
    stacks = directory / STACKS_FILE
    if stacks.exists():
        session.report.profile = summarise(stacks, top=25)
