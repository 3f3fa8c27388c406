"""The HTML views rendered by a real browser: headless Chromium (Debian's package) loads
the commitment page of a live worker, and its DOM holds the table and the history chart."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.integration.conftest import Worker

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed (make test-deps installs it)"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           *args], capture_output=True, text=True, timeout=120, check=False)


def test_commitment_page_renders_table_and_history_chart(loaded: Worker,
                                                         tmp_path: Path) -> None:
    url = f"{loaded.url}/commitments/in-ru-100bn-2030/"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "<h1>Commitment in-ru-100bn-2030</h1>" in html
    assert '<svg id="history-chart"' in html and html.count("<polyline") == 2
    assert "68700000000.00" in html and "off_track" in html
    assert "FY2024-25" in html, "the totals-by-period table is rendered"

    shot = tmp_path / "commitment.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000, "a blank page would compress far smaller"


def test_commitments_list_renders_in_the_browser(loaded: Worker, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", f"{loaded.url}/commitments/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<tr>") == 1 + 6, "a header row and one row per commitment"
