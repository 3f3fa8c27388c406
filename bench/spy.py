"""Summary of a py-spy ``--format raw`` file (collapsed stacks: ``frame;frame;... count``)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


_FRAMEWORK = ("asyncio/", "typer/", "<frozen", "(runpy", "mode/worker.py", "selectors.py",
              "services/tracker/commands/", "mode/utils/",
              "threading.py")


def _where(frame: str) -> str:
    """``fold (services/tracker/agents.py:123)`` -> ``fold (services/tracker/agents.py)``,
    with site-packages paths shortened to the package path."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def _module(frame: str) -> str:
    where = _where(frame)
    return where[where.rfind("(") + 1:-1] if where.endswith(")") else where


def summarise(path: Path, top: int = 25) -> list[str]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        total += count
        self_time[_where(frames[-1])] += count
        by_file[_module(frames[-1])] += count
        for name in {_where(f) for f in frames}:
            inclusive[name] += count
    if not total:
        return ["(no samples)"]
    lines = [f"{total:,} samples at 100 Hz (idle threads excluded)",
             "self time by source file:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in by_file.most_common(top)]
    lines.append("self time by function:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    lines.append("inclusive time by function (itself and what it calls; the project's code and "
                 "the libraries it calls into, event-loop and start-up frames left out):")
    wanted = [(name, n) for name, n in inclusive.most_common()
              if not any(skip in name for skip in _FRAMEWORK)][:top]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in wanted]
    return lines
