"""The order ``OrderedWrites`` sends a folded record's changelog writes in: ledgers only
once the broker acknowledged the record's roots, a reference only once it acknowledged
the ledgers too, records in the order they were folded, and nothing after a failure.
The broker's acknowledgements are futures the tests resolve by hand."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from services.tracker.changelog_writes import OrderedWrites, Record, SendFailed


class Broker:
    """Records each send and hands back a delivery the test acknowledges."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Record]]] = []
        self.deliveries: dict[str, list[asyncio.Future[Any]]] = {}

    async def send(self, topic: str, partition: int, records: list[Record],
                   failed: SendFailed) -> list[asyncio.Future[Any]]:
        self.sent.append((topic, records))
        delivery = asyncio.get_running_loop().create_future()
        self.deliveries.setdefault(topic, []).append(delivery)
        return [delivery]

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.sent]

    def ack(self, topic: str, which: int = -1, offset: int | None = None) -> None:
        """Acknowledge a delivery, as aiokafka would with the offset of its batch."""
        self.deliveries[topic][which].set_result(
            None if offset is None else SimpleNamespace(offset=offset))


def writes_of(record: int, reference: bool = False) -> tuple[Any, Any, Any]:
    return (("roots", [(f"AE-IN#{record}", {"e": 1})]),
            ("ledgers", [(f"AE-IN#{record}", {"head": {}})]),
            ("references", [("reference", {"fx": {}})] if reference else []))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_ledger_writes_wait_for_the_roots_and_a_reference_for_both() -> None:
    broker, failures = Broker(), []
    writes = OrderedWrites(broker.send, failures.append)
    await writes.write(0, *writes_of(7, reference=True))
    await settle()
    assert broker.topics() == ["roots"]
    broker.ack("roots")
    await settle()
    assert broker.topics() == ["roots", "ledgers"]
    broker.ack("ledgers")
    await writes.drained()
    assert broker.topics() == ["roots", "ledgers", "references"]
    assert not failures


async def test_records_keep_their_order_and_the_fold_does_not_wait() -> None:
    broker = Broker()
    writes = OrderedWrites(broker.send, [].append)
    await writes.write(0, *writes_of(1))
    await writes.write(0, *writes_of(2))  # handed over before the first is acknowledged
    assert broker.topics() == ["roots", "roots"]
    broker.ack("roots", 1)  # the second record's roots first
    await settle()
    assert broker.topics() == ["roots", "roots"], "a record's ledgers went before the last's"
    broker.ack("roots", 0)
    await writes.drained()
    assert [records[0][0] for topic, records in broker.sent if topic == "ledgers"] == [
        "AE-IN#1", "AE-IN#2"]


async def test_flushing_waits_for_writes_not_sent_yet() -> None:
    broker = Broker()
    writes = OrderedWrites(broker.send, [].append)
    await writes.write(0, *writes_of(1))
    drained = asyncio.ensure_future(writes.drained())
    await settle()
    assert not drained.done(), "drained while the ledger write was still to be sent"
    broker.ack("roots")
    await asyncio.wait_for(drained, 1)
    assert broker.topics() == ["roots", "ledgers"]


async def test_nothing_follows_writes_the_broker_refused() -> None:
    broker, failures = Broker(), []
    writes = OrderedWrites(broker.send, failures.append)
    await writes.write(0, *writes_of(1, reference=True))
    broker.deliveries["roots"][0].set_exception(OSError("broker gone"))
    await writes.drained()
    assert broker.topics() == ["roots"]
    await writes.write(0, *writes_of(2))
    broker.ack("roots")
    await writes.drained()
    assert broker.topics() == ["roots", "roots", "ledgers"]


async def test_a_send_that_raises_is_reported() -> None:
    failures: list[BaseException] = []

    async def refuse(topic: str, partition: int, records: list[Record],
                     failed: SendFailed) -> list[asyncio.Future[Any]]:
        if topic == "ledgers":
            raise RuntimeError("producer closed")
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return [done]

    writes = OrderedWrites(refuse, failures.append)
    await writes.write(0, *writes_of(1))
    await writes.drained()
    assert [str(error) for error in failures] == ["producer closed"]


async def test_the_fold_waits_once_too_many_records_wait_for_the_broker() -> None:
    broker = Broker()
    writes = OrderedWrites(broker.send, [].append, max_waiting=1)
    await writes.write(0, *writes_of(1))
    second = asyncio.ensure_future(writes.write(0, *writes_of(2)))
    await settle()
    assert not second.done(), "a second record went on while the first waited for its roots"
    broker.ack("roots", 0)
    await asyncio.wait_for(second, 1)
    broker.ack("roots", 1)
    await writes.drained()
    assert broker.topics() == ["roots", "roots", "ledgers", "ledgers"]


async def test_the_offsets_acknowledged_are_told_without_holding_the_chain() -> None:
    broker, told = Broker(), []
    writes = OrderedWrites(broker.send, [].append)
    await writes.write(0, *writes_of(1),
                       roots_acknowledged=lambda offset: told.append(("roots", offset)),
                       ledgers_acknowledged=lambda offset: told.append(("ledgers", offset)))
    broker.ack("roots", offset=40)
    await writes.drained()  # the ledgers were sent: the chain does not wait for their ack
    assert told == [("roots", 40)]
    broker.ack("ledgers", offset=17)
    await settle()
    assert told == [("roots", 40), ("ledgers", 17)]
    await writes.write(0, *writes_of(2),
                       ledgers_acknowledged=lambda offset: told.append(("ledgers", offset)))
    broker.ack("roots", offset=41)
    await writes.drained()
    broker.deliveries["ledgers"][-1].set_exception(OSError("broker gone"))
    await settle()
    assert told == [("roots", 40), ("ledgers", 17)], "a refused write tells nothing"
