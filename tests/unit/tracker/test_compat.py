"""The start-up check of what the tracker relies on beyond faust-streaming's public API
(services/tracker/compat.py)."""

from __future__ import annotations

import asyncio
import tomllib
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.stores import memory
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

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


# -- the consumer: changelog partitions back to the recovery after a discarded fetch -------

LEDGERS, ROOTS = "tracker-ledgers-changelog", "tracker-roots-changelog"


def recovery_standing_at(active: dict[TP, int], standby: dict[TP, int]) -> SimpleNamespace:
    return SimpleNamespace(active_tps=set(active), active_offsets=Counter(active),
                           standby_tps=set(standby), standby_offsets=Counter(standby))


def test_recovery_positions_are_the_last_applied_offsets_or_0_for_none_and_only_assigned():
    recovery = recovery_standing_at({TP(LEDGERS, 0): -1, TP(LEDGERS, 1): 41, TP(LEDGERS, 2): 7},
                                    {TP(ROOTS, 3): 12})
    assigned = {TP(LEDGERS, 0), TP(LEDGERS, 1), TP(ROOTS, 3), TP("tracker-ledger-input", 0)}
    assert compat.recovery_positions(recovery, assigned) == {
        TP(LEDGERS, 0): 0, TP(LEDGERS, 1): 41, TP(ROOTS, 3): 12}


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> tuple[compat.RecoverySafeConsumer, list]:
    """The worker's own consumer, its broker calls replaced by notes of what was asked."""
    tracker = build_tracker(Settings())
    consumer = tracker.app.consumer
    assert isinstance(consumer, compat.RecoverySafeConsumer)
    asked: list = []

    async def seek_to_committed(self: Any) -> None:
        asked.append("committed")

    async def seek_wait(self: Any, offsets: dict[TP, int]) -> None:
        asked.append(offsets)

    monkeypatch.setattr(faust_aiokafka.Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(faust_aiokafka.Consumer, "assignment",
                        lambda self: {TP(LEDGERS, 0), TP(LEDGERS, 1)})
    recovery = recovery_standing_at({TP(LEDGERS, 0): 9, TP(LEDGERS, 1): -1}, {})
    monkeypatch.setattr(type(tracker.app.tables), "recovery", recovery)
    return consumer, asked


def test_a_fetch_discarded_while_the_flow_is_stopped_sends_the_changelogs_back(consumer):
    consumer, asked = consumer
    consumer.flow_active = False
    asyncio.run(consumer.perform_seek())
    assert asked == ["committed", {TP(LEDGERS, 0): 9, TP(LEDGERS, 1): 0}]


def test_the_seek_after_recovery_leaves_the_changelogs_where_they_are(consumer):
    consumer, asked = consumer
    consumer.flow_active = True
    asyncio.run(consumer.perform_seek())
    assert asked == ["committed"]


def test_the_workers_consumer_waits_briefly_for_fetches_that_find_nothing():
    from services.tracker.app import create_faust_app
    from services.tracker.settings import Settings

    async def fetch_wait() -> int:  # aiokafka makes its consumer inside a running loop
        app = create_faust_app(Settings(kafka_bootstrap="127.0.0.1:9"))
        thread = app.consumer._thread  # type: ignore[attr-defined]
        assert isinstance(thread, compat.ShortFetchWaitThread)
        consumer = thread._create_worker_consumer(app.transport)
        wait: int = consumer._fetch_max_wait_ms
        return wait

    assert asyncio.run(fetch_wait()) == compat.FETCH_MAX_WAIT_MS == 100
