"""The HTML views rendered by a real browser: headless Chromium (Debian's package) loads
the pages of a live worker; their DOM holds formatted amounts, the history chart and the
totals grouped by kind of period, and a screenshot shows nothing running off the page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Worker
from tests.integration.png import blank_right_edge

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
WIDTH = 1200
MARGIN = 24  # pixels at the right edge that must stay blank (the page's margin is 32)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed (make test-deps installs it)"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           *args], capture_output=True, text=True, timeout=120, check=False)


def screenshot(tmp_path: Path, url: str, height: int = 900) -> bytes:
    shot = tmp_path / "page.png"
    done = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{height}", url)
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 20_000, "a blank page would compress far smaller"
    return data


def test_commitment_page_renders_facts_chart_and_grouped_periods(loaded: Worker,
                                                                 tmp_path: Path) -> None:
    url = f"{loaded.url}/commitments/in-ru-100bn-2030/"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "<h1>Commitment in-ru-100bn-2030</h1>" in html
    assert '<svg id="history-chart"' in html and html.count("<polyline") == 2
    assert "<th>achieved</th><td>USD 68.7 bn</td>" in html
    assert "<th>target</th><td>USD 100.0 bn</td>" in html
    assert "<th>progress</th><td>68.7%</td>" in html and "off_track" in html
    assert "68700000000" not in html, "amounts are formatted for people"
    calendar, fiscal, months = (html.index(heading) for heading in (
        "<h2>Calendar years</h2>", "<h2>Fiscal years (April-March)</h2>", "<h2>Months</h2>"))
    assert calendar < fiscal < months
    assert "<td>FY2024-25</td><td>USD 68.7 bn</td>" in html[fiscal:months]
    assert "<td>2024</td>" in html[calendar:fiscal] and "FY" not in html[calendar:fiscal]
    assert "<caption>USD bn</caption>" in html[months:]
    assert all(f"<th>{year}</th>" in html[months:] for year in range(2021, 2026))

    shot = screenshot(tmp_path, url, height=2400)
    assert blank_right_edge(shot, MARGIN), "something runs off the right of the page"


@pytest.mark.parametrize("path", ["/commitments/", "/commitments/in-ru-100bn-2030/history/",
                                  "/totals/?pair=IN-RU&period=FY2024-25",
                                  "/settlement/?pair=IN-RU&period=FY2024-25",
                                  "/totals/explain/?pair=IN-RU&sector=trade&period=FY2022-23",
                                  "/commitments/in-ru-defense-2018-contracts/explain/"])
def test_every_page_fits_the_window(loaded: Worker, tmp_path: Path, path: str) -> None:
    assert blank_right_edge(screenshot(tmp_path, f"{loaded.url}{path}"), MARGIN), path


def test_commitments_list_renders_in_the_browser(loaded: Worker, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", f"{loaded.url}/commitments/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<tr>") == 1 + 6, "a header row and one row per commitment"
    assert "<td>USD 100.0 bn</td>" in dom.stdout and "<td>650,000,000 bbl</td>" in dom.stdout
    assert "<td>25.0%</td>" in dom.stdout, "the rupee settlement target, a share"
