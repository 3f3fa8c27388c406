"""The background processes the ``tracker`` command runs - Kafka nodes and workers: each
started detached with a pid file, told alive or not from it, stopped (SIGTERM, then
SIGKILL), and for workers, waited for until their web server says ready and until they
have folded what was sent."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from services.tracker.errors import TrackerError

log = logging.getLogger(__name__)


def port_is_open(host: str, port: int) -> bool:
    """Whether a process listens on ``port`` (one to start there would fail to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; a child of this process that ended is reaped, not counted."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return _state(pid) != "Z"  # a zombie waits for a parent that may never reap it


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command's name (which may hold spaces): the state first,
    then the parent's pid (Linux; None where there is no such file)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def child_pids(pid: int) -> list[int]:
    """The running processes whose parent is ``pid`` (Linux: read from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields and fields[1] == str(pid) and fields[0] != "Z":
                children.append(int(entry.name))
    return sorted(children)


def running_pid(pid_file: Path) -> int | None:
    """The pid ``pid_file`` names if that process runs."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def start_detached(command: list[str], log_file: Path, pid_file: Path,
                   env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own (a Ctrl-C in this terminal does not reach
    it), its output appended to ``log_file``, and record its pid in ``pid_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file.write_text(str(process.pid))
    return process


def terminate(pid_file: Path) -> None:
    """Ask the process to stop (SIGTERM) without waiting for it."""
    pid = running_pid(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)


def stop(pid_file: Path, timeout: float) -> bool:
    """Stop the process cleanly (SIGTERM, then SIGKILL after ``timeout``) and forget its
    pid file; return whether it was running."""
    pid = running_pid(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(pid):
            if time.monotonic() >= deadline:
                log.warning("pid %d (%s) ignored SIGTERM for %.0fs; killing it", pid, pid_file,
                            timeout)
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    return pid is not None


def kill(pid_file: Path) -> bool:
    """kill -9 (no clean shutdown) and wait until the process is gone; return whether it
    was running."""
    pid = running_pid(pid_file)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return True


def wait_healthy(url: str, timeout: float) -> float:
    """Wait until the worker at ``url`` answers /health/ with 200 (tables recovered, no
    rebalance under way); return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/health/", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TrackerError(f"the worker at {url} did not become ready in {timeout:.0f}s")


def events_handled(url: str) -> float:
    """Records the worker has handled from the contract topics (any outcome)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tracker_events_total{") and "released-pending" not in line)


def wait_folded(urls: list[str], sent: int, timeout: float) -> bool:
    """Wait until every sent record has an outcome (each worker counts the partitions it
    owns) and the commitments stop changing; False if that took longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        if sum(events_handled(url) for url in urls) >= sent:
            current = httpx.get(f"{urls[0]}/commitments/", timeout=10).text
            if current == previous:
                return True
            previous = current
        time.sleep(1.0)
    return False
