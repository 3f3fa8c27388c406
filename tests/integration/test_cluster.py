"""Failures a production cluster has, on the production topology: three Kafka nodes in one
KRaft quorum (replication 3, min ISR 2; services/tracker/cluster.py) and two workers with
replication 3 and standbys. Each test is bounded in count and time, ends with the totals
equal to sums computed independently from what was sent, and `tracker reconcile` at zero.
Run alone with `pytest -m cluster`."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from services.tracker.cluster import WORKER_SETTINGS, LocalCluster
from tests.integration.conftest import Deployment, Worker, wait_until
from tests.integration.reliability import (
    Record,
    RetryingProducer,
    caught_up,
    own_deployment,
    stream_of_events,
    totals_equal,
    year_totals,
)
from tests.integration.test_chaos import start_together
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(300)]

# Printed by the fail-over test (pytest -s) and quoted in docs/reliability.md.
FAILOVER_SECONDS: dict[int, float] = {}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = LocalCluster(tmp_path_factory.mktemp("cluster"),
                         client_ports=tuple(free_port() for _ in range(3)),
                         controller_ports=tuple(free_port() for _ in range(3)), heap="384m")
    nodes.start(timeout=180)
    yield nodes
    nodes.stop()


@pytest.fixture
def deploy(cluster: LocalCluster, tmp_path: Path) -> Iterator[Callable[[int], Deployment]]:
    """Deployments on the cluster with the production worker settings and ``standbys``
    table standbys; every node runs when the test starts (a test before may have ended
    with one down)."""
    cluster.start(timeout=120)
    made: list[Deployment] = []

    def make(standbys: int = 1) -> Deployment:
        home = tmp_path / f"deployment-{len(made)}"
        home.mkdir()
        deployment = own_deployment(cluster, home)  # type: ignore[arg-type]
        deployment.base_env.update({**WORKER_SETTINGS,
                                    "TRACKER_STANDBY_REPLICAS": str(standbys),
                                    "TRACKER_APP_ID": f"{deployment.prefix}tracker"})
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        for worker in deployment.workers:
            worker.stop()


def admin_call(bootstrap: str, call: Callable[[AIOKafkaAdminClient], object]) -> object:
    async def run() -> object:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        await admin.start()
        try:
            return await call(admin)  # type: ignore[misc]
        finally:
            await admin.close()
    return asyncio.run(run())


def partitions(bootstrap: str, topics: list[str]) -> list[tuple[str, dict[str, object]]]:
    described = admin_call(bootstrap, lambda admin: admin.describe_topics(topics))
    return [(topic["topic"], partition) for topic in described  # type: ignore[attr-defined]
            for partition in topic["partitions"]]


def busiest_leader(bootstrap: str, topics: list[str]) -> int:
    """The node leading the partitions that hold the most records of ``topics``."""
    described = partitions(bootstrap, topics)
    leaders = {TopicPartition(topic, int(p["partition"])): int(p["leader"])  # type: ignore[call-overload]
               for topic, p in described}

    async def ends() -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            # Assigned first: a consumer that never had partitions raised CancelledError
            # from its stop() (aiokafka 0.14.0).
            consumer.assign(list(leaders))
            return dict(await consumer.end_offsets(list(leaders)))
        finally:
            await consumer.stop()

    load: dict[int, int] = {}
    for tp, end in asyncio.run(ends()).items():
        load[leaders[tp]] = load.get(leaders[tp], 0) + end
    return max(load, key=lambda node: load[node])


def fully_replicated(cluster: LocalCluster, prefix: str) -> bool:
    """Every partition of the deployment's topics has all its replicas in sync."""
    names = [name for name in admin_call(cluster.bootstrap,  # type: ignore[attr-defined]
                                         lambda admin: admin.list_topics())
             if name.startswith(prefix)]
    return all(len(p["isr"]) == len(p["replicas"])  # type: ignore[arg-type]
               for _, p in partitions(cluster.bootstrap, names))


def reconciled(deployment: Deployment, worker: Worker) -> None:
    done = deployment.run_cli("reconcile", "--url", worker.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No differences" in done.stdout


def settle(deployment: Deployment, producer: RetryingProducer, workers: list[Worker],
           expected: dict[tuple[str, str], Decimal]) -> None:
    """The stream fully acknowledged, every worker alive with totals equal to the log,
    still equal once the workers have committed every record sent (no late
    re-application), and reconcile at zero."""
    producer.join(120)
    assert producer.acknowledged == len(producer.records)
    for worker in workers:
        wait_until(lambda w=worker: totals_equal(w, expected), 120,  # type: ignore[misc]
                   message=f"{worker.url} to answer totals equal to the log")
    wait_until(lambda: caught_up(deployment), 120,
               message="the workers to commit every record sent")
    for worker in workers:
        assert year_totals(worker) == expected, f"{worker.url} changed after settling"
        assert worker.alive
    reconciled(deployment, workers[0])


def test_kill_9_of_the_busiest_leader_mid_stream_then_its_restart(
        cluster: LocalCluster, deploy: Callable[[int], Deployment]) -> None:
    deployment = deploy(1)
    first, second = deployment.worker("worker-1"), deployment.worker("worker-2")
    start_together(first, second)
    records, expected = stream_of_events(2400, seed=31)
    producer = RetryingProducer(deployment, records, batch=100, pause=0.1,
                                hold_at=2000).start()
    wait_until(lambda: producer.acknowledged >= 600, 60, message="a quarter of the stream")

    victim = busiest_leader(cluster.bootstrap, [deployment.topic("trade-transactions"),
                                                deployment.topic("tracker-ledger-input")])
    assert cluster.node(victim).kill()
    at_kill = producer.acknowledged
    producer.hold_at = at_kill + 500  # however far the stream got before the kill
    # Two of three replicas are in sync: acks=all writes go on while the node is down.
    wait_until(lambda: producer.acknowledged >= at_kill + 500, 60,
               message="the stream to go on with one node down")
    cluster.restart_node(victim)
    wait_until(lambda: fully_replicated(cluster, deployment.prefix), 90,
               message="the restarted node back in every ISR")
    producer.release()
    settle(deployment, producer, [first, second], expected)


def test_rolling_restart_of_all_three_nodes_while_events_stream(
        cluster: LocalCluster, deploy: Callable[[int], Deployment]) -> None:
    deployment = deploy(1)
    first, second = deployment.worker("worker-1"), deployment.worker("worker-2")
    start_together(first, second)
    records, expected = stream_of_events(3600, seed=37)
    producer = RetryingProducer(deployment, records, batch=50, pause=0.25,
                                hold_at=300).start()
    wait_until(lambda: producer.acknowledged >= 300, 60, message="the stream to start")
    for node in cluster.nodes:
        # The next 1,000 records stream while this node stops and starts again; the rest
        # waits, so every restart happens mid-stream however slow the machine is.
        before = producer.acknowledged
        producer.hold_at = before + 1000
        assert node.stop(timeout=60)  # SIGTERM: controlled shutdown moves its leaderships
        cluster.restart_node(node.node_id)
        # As an operator would: the next node only once this one is back in every ISR.
        wait_until(lambda: fully_replicated(cluster, deployment.prefix), 90,
                   message=f"node {node.node_id} back in every ISR")
        wait_until(lambda b=before: producer.acknowledged >= b + 1000, 60,  # type: ignore[misc]
                   message=f"the records sent across node {node.node_id}'s restart")
    assert producer.acknowledged < len(records)
    producer.release()
    settle(deployment, producer, [first, second], expected)


@pytest.mark.parametrize("standbys", [1, 0], ids=["with-standbys", "without-standbys"])
def test_kill_9_of_a_worker_the_other_answers_for_every_pair(
        deploy: Callable[[int], Deployment], standbys: int) -> None:
    deployment = deploy(standbys)
    first, second = deployment.worker("worker-1"), deployment.worker("worker-2")
    start_together(first, second)
    records, expected = stream_of_events(4000, seed=41 + standbys)
    head, tail = records[:3000], records[3000:]
    RetryingProducer(deployment, head, batch=500, pause=0).start().join(120)
    head_expected = totals_of(head)
    for worker in (first, second):
        wait_until(lambda w=worker: totals_equal(w, head_expected), 120,  # type: ignore[misc]
                   message=f"{worker.url} to fold the first 3,000 events")

    second.kill()
    killed = time.monotonic()
    # Polled every 0.1 s: the list view gathers every worker's rows, so it equals the log
    # only once the survivor owns and has recovered every partition.
    wait_until(lambda: totals_equal(first, head_expected), 90, interval=0.1,
               message="the survivor to answer for every pair")
    FAILOVER_SECONDS[standbys] = time.monotonic() - killed
    print(f"\nfail-over after kill -9 of a worker, standbys={standbys}: "
          f"{FAILOVER_SECONDS[standbys]:.1f} s")

    producer = RetryingProducer(deployment, tail, batch=250, pause=0).start()
    settle(deployment, producer, [first], expected)


def totals_of(records: list[Record]) -> dict[tuple[str, str], Decimal]:
    """(pair, year) sums of part of a ``stream_of_events`` stream, read back from its
    records (the helper's expectation covers the whole stream)."""
    sums: dict[tuple[str, str], Decimal] = {}
    for _, key, value in records:
        assert key is not None and value is not None
        event = orjson.loads(value)
        slot = (key.decode(), event["occurred_at"][:4])
        sums[slot] = sums.get(slot, Decimal(0)) + Decimal(event["amount"])
    return dict(sums)


def test_the_quorum_loses_its_active_controller_mid_stream(
        cluster: LocalCluster, deploy: Callable[[int], Deployment]) -> None:
    deployment = deploy(1)
    first, second = deployment.worker("worker-1"), deployment.worker("worker-2")
    start_together(first, second)
    records, expected = stream_of_events(2400, seed=43)
    producer = RetryingProducer(deployment, records, batch=100, pause=0.1,
                                hold_at=2000).start()
    wait_until(lambda: producer.acknowledged >= 500, 60, message="the stream to start")

    leader = cluster.quorum_leader()
    assert leader is not None
    assert cluster.node(leader).kill()
    # Two of three voters remain: a majority, which elects a new active controller...
    new_leader = wait_until(lambda: (found := cluster.quorum_leader()) not in (None, leader)
                            and found, 60, message="a new active controller")
    assert new_leader != leader
    # ...that still commits metadata changes (creating a topic needs the quorum).
    probe = f"{deployment.prefix}quorum-probe-{uuid.uuid4().hex[:6]}"

    def created() -> bool:
        # Both calls retried: a client may still take the dead node for the one to send to.
        with contextlib.suppress(KafkaError, TimeoutError):
            admin_call(cluster.bootstrap,
                       lambda admin: admin.create_topics([NewTopic(probe, 1, 2)]))
        try:
            topics = admin_call(cluster.bootstrap, lambda admin: admin.list_topics())
        except (KafkaError, TimeoutError) as error:  # wait_until reports it if it lasts
            raise ValueError(f"topics not listed: {error!r}") from error
        return probe in topics  # type: ignore[operator]

    wait_until(created, 60, message="a topic created without the old controller")
    at_kill = producer.acknowledged
    # The election and the probe take as long as they take: the producer may have reached
    # its hold by now, so the hold moves past the 300 records this step waits for.
    producer.hold_at = at_kill + 300
    wait_until(lambda: producer.acknowledged >= at_kill + 300, 60,
               message="the stream to go on without the old controller")

    cluster.restart_node(leader)
    wait_until(lambda: fully_replicated(cluster, deployment.prefix), 90,
               message="the old controller's node back in every ISR")
    producer.release()
    settle(deployment, producer, [first, second], expected)
