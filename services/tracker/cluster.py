"""The production topology on one machine, without Docker: three Apache Kafka nodes in
KRaft mode (each broker and controller, one quorum) from the same jars as the embedded
broker, and two workers with standby replicas. ``make cluster`` / ``make cluster-stop``.

The settings that make it production-shaped - replication, min ISR, standbys - are
defined here once; docker-compose.yml repeats them and tests/unit/ops/test_compose.py
fails when the two drift apart.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

from services.tracker.broker import EmbeddedKafka, new_cluster_id
from services.tracker.errors import BrokerError

CLIENT_PORTS = (9092, 9094, 9096)
CONTROLLER_PORTS = (9093, 9095, 9097)
WEB_PORTS = (6066, 6067)
REPLICATION = 3
MIN_INSYNC_REPLICAS = 2
# Compose starts both workers at once: waiting 3 s lets both join the group's first
# generation instead of one taking everything and handing half over at once.
INITIAL_REBALANCE_DELAY_MS = 3000

# The tracker settings every worker of the production topology shares (compose repeats
# them). Host-specific ones (bootstrap, web host and port, data dir, worker id) are not
# here.
WORKER_SETTINGS = {
    "TRACKER_APP_ID": "commitment-tracker",
    "TRACKER_PARTITIONS": "4",
    "TRACKER_REPLICATION": str(REPLICATION),
    "TRACKER_STANDBY_REPLICAS": "1",
}


@dataclass(frozen=True)
class LocalCluster:
    """Three combined KRaft nodes under ``data_dir`` (``kafka-1`` ... ``kafka-3``)."""

    data_dir: Path
    client_ports: tuple[int, ...] = CLIENT_PORTS
    controller_ports: tuple[int, ...] = CONTROLLER_PORTS
    heap: str = "512m"
    host: str = "127.0.0.1"

    @property
    def voters(self) -> str:
        return ",".join(f"{node_id}@{self.host}:{port}"
                        for node_id, port in enumerate(self.controller_ports, start=1))

    @property
    def nodes(self) -> list[EmbeddedKafka]:
        return [EmbeddedKafka(self.data_dir / f"kafka-{node_id}", port, controller_port,
                              self.heap, self.host, node_id=node_id, voters=self.voters,
                              replication=REPLICATION, min_insync_replicas=MIN_INSYNC_REPLICAS,
                              initial_rebalance_delay_ms=INITIAL_REBALANCE_DELAY_MS)
                for node_id, (port, controller_port)
                in enumerate(zip(self.client_ports, self.controller_ports, strict=True),
                             start=1)]

    def node(self, node_id: int) -> EmbeddedKafka:
        return self.nodes[node_id - 1]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def cluster_id(self) -> str:
        """Made on the first start and kept: every node is formatted with the same id."""
        path = self.data_dir / "cluster.id"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id())
        return path.read_text().strip()

    def start(self, timeout: float = 180.0) -> list[int]:
        """Start every node not running yet, then wait until all three brokers are in the
        cluster's metadata. Returns the pids."""
        cluster_id = self.cluster_id()
        processes = {node.node_id: node.launch(cluster_id) for node in self.nodes
                     if node.running_pid() is None}
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            process = processes.get(node.node_id)
            node.wait_ready(max(1.0, deadline - time.monotonic()), process)
        self.wait_brokers(len(self.nodes), max(1.0, deadline - time.monotonic()))
        return [pid for node in self.nodes if (pid := node.running_pid()) is not None]

    def restart_node(self, node_id: int, timeout: float = 120.0) -> None:
        """Start one stopped node again and wait until the cluster sees all its brokers."""
        node = self.node(node_id)
        node.wait_ready(timeout, node.launch(self.cluster_id()))
        self.wait_brokers(len(self.nodes), timeout)

    def stop(self, timeout: float = 60.0) -> int:
        """Stop every node (SIGTERM to all at once: stopped one at a time, the last ones
        hang in controlled shutdown waiting for a controller majority that is gone);
        returns how many were running."""
        running = [node for node in self.nodes if node.running_pid() is not None]
        for node in running:
            node.signal_stop()
        for node in running:
            node.stop(timeout)
        return len(running)

    def wait_brokers(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _broker_count(self.bootstrap) >= count:
                return
            time.sleep(0.5)
        raise BrokerError(f"fewer than {count} brokers joined the cluster in {timeout:.0f}s; "
                          f"see {self.data_dir}/kafka-*/logs")

    def quorum_leader(self) -> int | None:
        """The node id of the active controller, as the running nodes' quorum-state files
        record it (the latest epoch wins); None while there is none."""
        best: tuple[int, int] | None = None
        for node in self.nodes:
            if node.running_pid() is None:
                continue
            state_file = node.log_dir / "__cluster_metadata-0" / "quorum-state"
            try:
                state = json.loads(state_file.read_text())
            except (FileNotFoundError, ValueError):
                continue
            leader, epoch = int(state.get("leaderId", -1)), int(state.get("leaderEpoch", -1))
            if leader > 0 and (best is None or epoch > best[1]):
                best = (leader, epoch)
        return best[0] if best else None


def _broker_count(bootstrap: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    async def count() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            described = await admin.describe_cluster()
            return len(described["brokers"])
        except Exception:  # any failure means "not there yet"
            return 0
        finally:
            await admin.close()

    return asyncio.run(count())


def worker_environment(index: int, bootstrap: str, data_dir: Path,
                       web_ports: tuple[int, ...] = WEB_PORTS) -> dict[str, str]:
    """TRACKER_* variables of the ``index``-th worker (0-based) of the topology."""
    return {**WORKER_SETTINGS, "TRACKER_KAFKA_BOOTSTRAP": bootstrap,
            "TRACKER_WORKER_ID": f"worker-{index + 1}",
            "TRACKER_WEB_PORT": str(web_ports[index]), "TRACKER_DATA_DIR": str(data_dir)}
