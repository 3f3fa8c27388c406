"""A worker whose intake ended exits even if its own stop hangs."""

from __future__ import annotations

import subprocess
import sys
import time

from services.tracker.broker import PROJECT_ROOT

HANGING = ("import logging; logging.basicConfig()\n"
           "from services.tracker.agents import exit_if_still_running\n"
           "exit_if_still_running(0.3)\n"
           "import time; time.sleep(30)\n")


def test_a_process_that_does_not_stop_exits_with_status_1() -> None:
    started = time.monotonic()
    ended = subprocess.run([sys.executable, "-c", HANGING], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=25, check=False)
    assert ended.returncode == 1, ended.stderr
    assert time.monotonic() - started < 20
    assert "did not stop within 0 s of its intake ending; exiting" in ended.stderr
