"""The start-up check of what the tracker relies on beyond faust-streaming's public API
(services/tracker/compat.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import faust
import pytest
from faust.stores import memory

from services.tracker import compat
from services.tracker.errors import TrackerError
from services.tracker.service import build_tracker
from services.tracker.settings import Settings

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def refusal() -> str:
    with pytest.raises(TrackerError) as refused:
        compat.check()
    return str(refused.value)


def test_the_pinned_faust_streaming_has_everything_the_tracker_relies_on():
    assert faust.__version__ == compat.PINNED_FAUST, "the tests run on the pinned version"
    compat.check()


def test_the_pin_named_is_the_one_in_pyproject():
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert f"faust-streaming=={compat.PINNED_FAUST}" in dependencies


@pytest.mark.parametrize("reliance", compat.RELIED_ON, ids=lambda r: r.qualified_name)
def test_a_missing_name_stops_the_check_with_one_line_naming_it_and_the_pin(
        reliance: compat.Reliance, monkeypatch: pytest.MonkeyPatch):
    if reliance.set_by is None:
        monkeypatch.delattr(reliance.owner, reliance.name)
    else:  # the instances would no longer get the attribute
        monkeypatch.setattr(reliance.owner, reliance.set_by, lambda self, *args, **kw: None)
    message = refusal()
    assert f"`{reliance.qualified_name}`" in message
    assert f"faust-streaming=={compat.PINNED_FAUST}" in message
    assert "\n" not in message


def test_the_message_in_full(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(memory.Store, "__post_init__", lambda self: None)
    assert refusal() == (
        f"faust-streaming {faust.__version__} has no "
        "`faust.stores.memory.Store._key_partition`, `faust.stores.memory.Store.data`, "
        "which the tracker relies on "
        "(services/tracker/compat.py): install the pinned faust-streaming==0.15.3")


def test_the_worker_checks_at_start_up(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delattr(faust.App, "_new_producer_transport")
    with pytest.raises(TrackerError, match="_new_producer_transport"):
        build_tracker(Settings())
