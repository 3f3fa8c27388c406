"""schemas/json/*.json must be what ``make schemas`` writes now: regenerate when this fails."""

from __future__ import annotations

import json

import pytest

from schemas.events import EVENT_MODELS
from schemas.export import SCHEMA_DIR, render_all

RENDERED = render_all()
HINT = "schemas/json is stale: run `make schemas` (python -m schemas.export) and commit it"


def test_one_schema_file_per_event_model():
    assert set(RENDERED) == {f"{name}.schema.json" for name in EVENT_MODELS}


@pytest.mark.parametrize("file_name", sorted(RENDERED))
def test_schema_file_exists(file_name):
    assert (SCHEMA_DIR / file_name).is_file(), f"{file_name} missing; {HINT}"


@pytest.mark.parametrize("file_name", sorted(RENDERED))
def test_schema_file_is_up_to_date(file_name):
    path = SCHEMA_DIR / file_name
    if not path.is_file():
        pytest.fail(f"{file_name} missing; {HINT}")
    assert path.read_text() == RENDERED[file_name], f"{file_name} differs; {HINT}"


def test_no_leftover_schema_files():
    on_disk = {path.name for path in SCHEMA_DIR.glob("*.json")}
    assert on_disk == set(RENDERED), f"unexpected or missing files; {HINT}"


@pytest.mark.parametrize("file_name", sorted(RENDERED))
def test_rendered_schema_is_json_with_its_id(file_name):
    schema = json.loads(RENDERED[file_name])
    assert schema["$id"].endswith(f"/schemas/{file_name}")
    assert "event_id" in schema["properties"]
