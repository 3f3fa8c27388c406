"""Embedded Apache Kafka broker (KRaft, one combined node) run as a plain Java process.

The jars come from Maven Central through ``ops/kafka/pom.xml``; this module does what
Kafka's own scripts do: ``bin/kafka-storage.sh format`` is ``kafka.tools.StorageTool`` and
``bin/kafka-server-start.sh`` is ``kafka.Kafka`` with a properties file.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

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


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class EmbeddedKafka:
    """One KRaft node whose data, logs and pid file live under ``data_dir``."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    host: str = "127.0.0.1"

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

    def _write_properties(self) -> None:
        template = Template((KAFKA_OPS_DIR / "server.properties.template").read_text())
        self.properties_file.write_text(template.substitute(
            port=self.port, controller_port=self.controller_port, log_dir=self.log_dir))

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java (17 or newer) is not on PATH; the broker needs it")
        return [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={KAFKA_OPS_DIR / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
                "-cp", f"{resolve_jars()}/*", main_class, *args]

    def format_storage(self) -> bool:
        """Format the KRaft log directory on first start; return whether it was formatted."""
        if (self.log_dir / "meta.properties").exists():
            return False
        cluster_id = new_cluster_id()
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                       "-c", str(self.properties_file)),
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"kafka-storage format failed:\n{done.stdout}{done.stderr}")
        log.info("Formatted new KRaft storage in %s (cluster %s)", self.log_dir, cluster_id)
        return True

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, timeout: float = 90.0) -> int:
        """Start the broker in the background (unless it runs already) and wait until ready."""
        pid = self.running_pid()
        if pid is not None:
            self.wait_ready(timeout)
            return pid
        for busy in (self.port, self.controller_port):
            if port_is_open(self.host, busy):
                raise BrokerError(f"port {busy} on {self.host} is taken by another process; "
                                  "set TRACKER_BROKER_PORT / TRACKER_BROKER_CONTROLLER_PORT")
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self.format_storage()
        with open(self.data_dir / "logs" / "broker.out", "ab") as out:
            process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.properties_file)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.pid_file.write_text(str(process.pid))
        log.info("Started Kafka broker pid %d on %s", process.pid, self.bootstrap)
        self.wait_ready(timeout, process)
        return process.pid

    def wait_ready(self, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
        """Wait until the broker answers a metadata request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise BrokerError(f"the broker exited with code {process.returncode}; "
                                  f"see {self.data_dir / 'logs'}")
            if port_is_open(self.host, self.port) and _metadata_answers(self.bootstrap):
                return
            time.sleep(0.3)
        raise BrokerError(f"the broker did not become ready on {self.bootstrap} in {timeout:.0f}s")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``)."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.2)
        else:
            log.warning("Broker pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def _alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
