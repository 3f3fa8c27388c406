"""The sample file through a real broker and one worker: totals, commitments, dead letters,
duplicates, corrections, late FX rates, the HTTP formats and errors, metrics, and the
progress-updates topic."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import orjson

from tests.integration.conftest import PROJECT_ROOT, Deployment, Worker, wait_until
from tests.integration.independent_fold import Expected
from tests.integration.reliability import caught_up

PUBLISHED_FY = {2021: "13.1", 2022: "49.4", 2023: "65.7", 2024: "68.7"}  # USD billion


def test_independent_fold_reproduces_the_published_figures(expected: Expected) -> None:
    for start, billions in PUBLISHED_FY.items():
        assert expected.fiscal_year(start) == Decimal(billions) * 10**9


def test_sample_answers_every_view(deployment: Deployment, loaded: Worker,
                                   expected: Expected) -> None:
    commitment = loaded.get("/commitments/in-ru-100bn-2030/").json()
    assert commitment["achieved"] == "68700000000.0000"
    assert commitment["ratio"] == "0.6870"
    assert commitment["status"] == "off_track"
    assert commitment["data_through"] == "2025-03"
    fy_rows = {row["period"]: row["value"] for row in commitment["totals"]
               if row["period"].startswith("FY")}
    for start, billions in PUBLISHED_FY.items():
        label = f"FY{start}-{(start + 1) % 100:02d}"
        assert Decimal(fy_rows[label]) == expected.fiscal_year(start) == Decimal(billions) * 10**9

    listing = loaded.get("/commitments/").json()["items"]
    statuses = {item["commitment_id"]: item["status"] for item in listing}
    assert statuses == {"in-ru-30bn-2025": "achieved", "in-ru-100bn-2030": "off_track",
                        "in-ru-crude-volume": "achieved",
                        "in-ru-defense-2018-contracts": "off_track",
                        "in-ru-rupee-settlement": "off_track",
                        "in-ru-draft-2023": "withdrawn"}
    revised = loaded.get("/commitments/in-ru-crude-volume/").json()
    assert revised["target"] == "650000000.0000", "the revision must replace the target"

    totals = loaded.get("/totals/", params={"pair": "RU-IN", "sector": "all",
                                            "period": "FY2023-24"}).json()["items"]
    by_measure = {row["measure"]: Decimal(row["value"]) for row in totals}
    assert {row["pair"] for row in totals} == {"IN-RU"}, "pairs are unordered"
    assert by_measure["value_usd"] == expected.fiscal_year(2023)
    assert by_measure["bbl"] == 650_000_000
    monthly = loaded.get("/totals/", params={"pair": "IN-RU", "sector": "all",
                                             "measure": "value_usd"}).json()["items"]
    months = {row["period"]: Decimal(row["value"]) for row in monthly if len(row["period"]) == 7}
    assert months == {m: v for m, v in expected.months.items()}


def test_bad_input_goes_to_dead_letters_with_reason_and_original_bytes(
        deployment: Deployment, loaded: Worker, expected: Expected) -> None:
    # Once every record sent is forwarded, the topic read to its end holds every letter
    # there will be: one too many would be seen too.
    wait_until(lambda: caught_up(deployment), 60, message="the intake and fold to catch up")
    letters = deployment.consume_to_end("dead-letters")
    assert len(letters) == len(expected.invalid_lines) == 8
    assert sorted(m.value for m in letters) == sorted(expected.invalid_lines)
    for message in letters:
        headers = dict(message.headers)
        assert headers["tracker.reason"]
        assert headers["tracker.source.topic"].decode().startswith(deployment.prefix)
        int(headers["tracker.source.offset"])
    reasons = b" ".join(dict(m.headers)["tracker.reason"] for m in letters).decode()
    for fragment in ("not valid JSON", "unknown country code 'XX'", "unknown currency",
                     "direction: Field required", "negative amounts", "schema_version"):
        assert fragment in reasons
    metrics = loaded.get("/metrics").text
    dead = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("tracker_events_total{") and 'outcome="dead_letter"' in line)
    assert dead == len(expected.invalid_lines)
    duplicates = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("tracker_events_total{") and 'outcome="duplicate"' in line)
    assert duplicates == expected.duplicates == 5
    assert loaded.get("/health/").status_code == 200, "bad input must not stop the worker"


def test_progress_updates_are_published(deployment: Deployment, loaded: Worker) -> None:
    # Each commitment's snapshots are keyed by its id, so they sit on different partitions:
    # read until the one checked below has come, not just until the first batch.
    updates = deployment.consume_all(
        "progress-updates", 1, until=lambda got: any(m.key == b"in-ru-100bn-2030" for m in got))
    assert updates
    keys = {m.key.decode() for m in updates}
    assert "in-ru-100bn-2030" in keys
    last = [orjson.loads(m.value) for m in updates if m.key == b"in-ru-100bn-2030"][-1]
    assert set(last) >= {"target", "achieved", "ratio", "status", "projected_completion"}


def test_formats_and_errors(loaded: Worker) -> None:
    csv_text = loaded.get("/commitments/", params={"format": "csv"}).text
    assert csv_text.splitlines()[0].startswith("commitment_id,pair,sector")
    assert len(csv_text.splitlines()) == 7
    page = loaded.get("/commitments/", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "<table>" in page.text and "in-ru-100bn-2030" in page.text
    for path, params, status, fragment in [
        ("/totals/", {"sector": "farming"}, 400, "sector"),
        ("/totals/", {"period": "FY2024-26"}, 400, "fiscal year"),
        ("/totals/", {"pair": "INDIA"}, 400, "pair"),
        ("/totals/", {"colour": "red"}, 400, "unknown query parameter"),
        ("/commitments/", {"format": "xml"}, 400, "format"),
        ("/commitments/nope/", {}, 404, "no commitment"),
    ]:
        answer = loaded.get(path, params=params)
        assert answer.status_code == status, (path, params, answer.text)
        assert fragment in answer.json()["error"]


def test_reconcile_finds_no_difference_and_reports_one(deployment: Deployment,
                                                       loaded: Worker) -> None:
    clean = deployment.run_cli("reconcile", "--url", loaded.url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No differences" in clean.stdout
    assert "dead letters expected 8, in topic 8" in clean.stdout
    # Fold the log under a stricter size limit than the worker had: most events now
    # fail validation, so reconcile must report the worker's figures as differences.
    strict = subprocess.run(
        [sys.executable, "-m", "services.tracker.cli", "reconcile", "--url", loaded.url],
        cwd=PROJECT_ROOT, env={**deployment.base_env, "TRACKER_MAX_EVENT_BYTES": "256"},
        capture_output=True, text=True, timeout=120, check=False)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "differences" in strict.stdout and "in-ru-100bn-2030" in strict.stdout
