"""`tracker status` against a real worker shows every commitment, however many pages the
list view answers in: more commitments than one page holds, each on a pair of its own; a
worker's refusal is reported as before."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import orjson

from schemas.codes import COUNTRIES
from services.tracker.api.paging import DEFAULT_LIMIT, MAX_LIMIT
from tests.integration.conftest import Deployment, wait_until

COMMITMENTS = DEFAULT_LIMIT + 1  # one more than the first page holds


def declaration(number: int, parties: tuple[str, str]) -> bytes:
    return orjson.dumps({"topic": "commitments", "value": {
        "schema_version": 1, "event_id": f"paged-{number:04d}-declared",
        "occurred_at": "2024-01-01", "commitment_id": f"paged-{number:04d}",
        "action": "declared", "parties": list(parties), "sector": "trade",
        "metric": "value_usd", "target": "1000000000", "basis": "annual",
        "period_start": "2024-01-01", "deadline": "2030-12-31",
        "source": "tests/integration/test_status_command.py"}})


def test_status_follows_the_pages_to_the_last(deployment: Deployment, tmp_path: Path) -> None:
    pairs = list(combinations(sorted(COUNTRIES), 2))[:COMMITMENTS]
    expected = [f"paged-{number:04d}" for number in range(COMMITMENTS)]
    records = tmp_path / "commitments.jsonl"
    # Commitments only: no ledger is written, and the worker must still know who owns a
    # pair.
    records.write_bytes(b"\n".join(declaration(number, pair)
                                   for number, pair in enumerate(pairs)) + b"\n")
    worker = deployment.worker()
    worker.start()
    sent = deployment.run_cli("produce", str(records))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert f"sent {COMMITMENTS} " in sent.stdout

    def listed() -> int:
        answer = worker.get("/commitments/", params={"limit": MAX_LIMIT})
        if answer.status_code != 200:  # as wait_until's last error, should it time out
            raise ValueError(f"{answer.status_code}: {answer.text[:300]}")
        return int(answer.json()["count"])

    wait_until(lambda: listed() == COMMITMENTS, 120,
               message=f"the worker to list {COMMITMENTS} commitments")
    first_page = worker.get("/commitments/").json()
    assert first_page["count"] == DEFAULT_LIMIT and first_page["next"] is not None

    for as_of in ([], ["--as-of", "2024-06-30"]):
        shown = deployment.run_cli("status", "--url", worker.url, *as_of)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        rows = re.findall(r"\bpaged-\d{4}\b", shown.stdout)
        assert sorted(rows) == expected, f"{len(rows)} of {COMMITMENTS} shown ({as_of})"

    refused = deployment.run_cli("status", "--url", worker.url, "--as-of", "31/12/2024")
    assert refused.returncode == 1
    assert f"{worker.url} answered 400:" in refused.stderr and "as_of" in refused.stderr
