"""Embedded Apache Kafka broker (KRaft, one combined node) run as a plain Java process.

The jars come from Maven Central through ``ops/kafka/pom.xml``; this module does what
Kafka's own scripts do: ``bin/kafka-storage.sh format`` is ``kafka.tools.StorageTool`` and
``bin/kafka-server-start.sh`` is ``kafka.Kafka`` with a properties file.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from services.tracker import processes
from services.tracker.errors import BrokerError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KAFKA_OPS_DIR = PROJECT_ROOT / "ops" / "kafka"
JARS_DIR = KAFKA_OPS_DIR / "target" / "libs"


def resolve_jars(jars_dir: Path = JARS_DIR) -> Path:
    """Download the broker jars with Maven once; later calls find them in place."""
    if any(jars_dir.glob("kafka_2.13-*.jar")):
        return jars_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH; it is needed once to fetch the Kafka jars")
    log.info("Resolving Apache Kafka jars from Maven Central into %s", jars_dir)
    cmd = [mvn, "-q", "-B", "-f", str(KAFKA_OPS_DIR / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={jars_dir}", "-DincludeScope=runtime"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerError(f"Maven could not resolve the Kafka jars:\n{done.stdout}{done.stderr}")
    return jars_dir


def new_cluster_id() -> str:
    """A Kafka cluster id: a URL-safe base64 UUID that, like Kafka's own Uuid.randomUuid(),
    never starts with '-' (the storage tool would read it as an option)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


@dataclass(frozen=True)
class EmbeddedKafka:
    """One KRaft node (broker and controller) whose data, logs and pid file live under
    ``data_dir``. Alone by default; with ``voters`` naming the other nodes' controllers (the
    same string on every node) it is one of a quorum (``services/tracker/cluster.py``)."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    host: str = "127.0.0.1"
    node_id: int = 1
    voters: str = ""  # controller.quorum.voters; empty: this node alone
    replication: int = 1  # of the internal topics and the default of created ones
    min_insync_replicas: int = 1
    # A lone node has nobody to wait for; a cluster waits so that workers starting together
    # join the first generation of their group together.
    initial_rebalance_delay_ms: int = 0
    # Appended to server.properties; a later key wins (java.util.Properties), so these can
    # replace listeners and their security (the SASL_SSL test broker does).
    extra_properties: tuple[tuple[str, str], ...] = ()
    format_args: tuple[str, ...] = ()  # more `kafka-storage format` options (--add-scram)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kraft-logs"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def quorum_voters(self) -> str:
        return self.voters or f"{self.node_id}@{self.host}:{self.controller_port}"

    def _write_properties(self) -> None:
        template = Template((KAFKA_OPS_DIR / "server.properties.template").read_text())
        text = template.substitute(
            node_id=self.node_id, voters=self.quorum_voters, host=self.host, port=self.port,
            controller_port=self.controller_port, log_dir=self.log_dir,
            replication=self.replication, min_isr=self.min_insync_replicas,
            rebalance_delay_ms=self.initial_rebalance_delay_ms)
        extra = "".join(f"{key}={value}\n" for key, value in self.extra_properties)
        self.properties_file.write_text(text + extra)

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java (17 or newer) is not on PATH; the broker needs it")
        return [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={KAFKA_OPS_DIR / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
                "-cp", f"{resolve_jars()}/*", main_class, *args]

    def format_storage(self, cluster_id: str | None = None) -> bool:
        """Format the KRaft log directory on first start; return whether it was formatted.
        The nodes of one cluster must be formatted with the same ``cluster_id``."""
        if (self.log_dir / "meta.properties").exists():
            return False
        cluster_id = cluster_id or new_cluster_id()
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                       "-c", str(self.properties_file), *self.format_args),
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            # The output can echo --add-scram arguments: keep passwords out of the error.
            output = _without(done.stdout + done.stderr, self.format_args)
            raise BrokerError(f"kafka-storage format failed:\n{output}")
        log.info("Formatted new KRaft storage in %s (cluster %s)", self.log_dir, cluster_id)
        return True

    def running_pid(self) -> int | None:
        return processes.running_pid(self.pid_file)

    def start(self, timeout: float = 90.0) -> int:
        """Start the broker in the background (unless it runs already) and wait until ready."""
        pid = self.running_pid()
        if pid is not None:
            self.wait_ready(timeout)
            return pid
        process = self.launch()
        self.wait_ready(timeout, process)
        return process.pid

    def launch(self, cluster_id: str | None = None) -> subprocess.Popen[bytes]:
        """Format on first start and start the process, without waiting: a node of a quorum
        is ready only once enough of the others run too."""
        for busy in (self.port, self.controller_port):
            if processes.port_is_open(self.host, busy):
                raise BrokerError(f"port {busy} on {self.host} is taken by another process; "
                                  "set TRACKER_BROKER_PORT / TRACKER_BROKER_CONTROLLER_PORT")
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self.format_storage(cluster_id)
        process = processes.start_detached(self._java("kafka.Kafka", str(self.properties_file)),
                                           self.data_dir / "logs" / "broker.out", self.pid_file)
        log.info("Started Kafka node %d, pid %d, on %s", self.node_id, process.pid,
                 self.bootstrap)
        return process

    def kill(self) -> bool:
        """kill -9: no controlled shutdown, no flush (the chaos tests)."""
        return processes.kill(self.pid_file)

    def wait_ready(self, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
        """Wait until the broker answers a metadata request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise BrokerError(f"the broker exited with code {process.returncode}; "
                                  f"see {self.data_dir / 'logs'}")
            if processes.port_is_open(self.host, self.port) and _metadata_answers(self.bootstrap):
                return
            time.sleep(0.3)
        raise BrokerError(f"the broker did not become ready on {self.bootstrap} in {timeout:.0f}s")

    def signal_stop(self) -> None:
        """Ask the broker to stop (SIGTERM) without waiting for it."""
        processes.terminate(self.pid_file)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``); return whether
        it was running."""
        return processes.stop(self.pid_file, timeout)


def _without(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _metadata_answers(bootstrap: str) -> bool:
    """True once a client can fetch cluster metadata (the port opens a little earlier)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:  # any failure means "not ready yet"
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())
