"""`make cluster` / `make cluster-stop` (`tracker cluster up|down`) as a user runs them, on
free ports: three Kafka nodes, topics with replication 3 and min ISR 2, two workers, the
sample loaded once and equal to the log; stopped with the data kept and resumed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.integration.conftest import PROJECT_ROOT, SAMPLE, wait_until
from tests.integration.independent_fold import Expected
from tests.ports import free_run

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(420)]


def replication_of(bootstrap: str) -> dict[str, tuple[set[int], str]]:
    """Topic -> (replication factors of its partitions, its min.insync.replicas)."""
    async def describe() -> dict[str, tuple[set[int], str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = [n for n in await admin.list_topics() if not n.startswith("__")]
            topics = await admin.describe_topics(names)
            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
            min_isr = {resource[3]: dict((entry[0], entry[1]) for entry in resource[4])
                       ["min.insync.replicas"]
                       for response in configs for resource in response.resources}
            return {t["topic"]: ({len(p["replicas"]) for p in t["partitions"]},
                                 min_isr[t["topic"]]) for t in topics}
        finally:
            await admin.close()
    return asyncio.run(describe())


def test_cluster_up_loads_the_sample_stops_with_data_kept_and_resumes(
        tmp_path: Path, expected: Expected) -> None:
    kafka_port, web_port = free_run(6), free_run(2)
    env = {**os.environ, "TRACKER_DATA_DIR": str(tmp_path / "data"),
           "TRACKER_BROKER_PORT": str(kafka_port), "TRACKER_WEB_PORT": str(web_port)}
    bootstrap = ",".join(f"127.0.0.1:{kafka_port + offset}" for offset in (0, 2, 4))
    urls = [f"http://127.0.0.1:{web_port + offset}" for offset in (0, 1)]
    target = expected.trailing_twelve_months().quantize(Decimal("0.01"))

    def tracker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.tracker.cli", *args],
                              cwd=PROJECT_ROOT, env={**env, "TRACKER_KAFKA_BOOTSTRAP": bootstrap},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def equal_to_the_log() -> None:
        for url in urls:
            answer = httpx.get(f"{url}/commitments/in-ru-100bn-2030/", timeout=20).json()
            assert Decimal(answer["achieved"]) == target, url
            reconciled = tracker("reconcile", "--url", url)
            assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
            assert "No differences" in reconciled.stdout

    try:
        up = tracker("cluster", "up", "--sample", str(SAMPLE))
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"Kafka cluster ready on {bootstrap}" in up.stdout
        assert "rejected 0" in up.stdout
        for topic, (factors, min_isr) in replication_of(bootstrap).items():
            assert factors == {3} and min_isr == "2", topic
        equal_to_the_log()
        assert tracker("cluster", "status").returncode == 0

        pids = [int(path.read_text()) for path in (tmp_path / "data" / "cluster").glob("*.pid")]
        pids += [int(path.read_text())
                 for path in (tmp_path / "data" / "cluster").glob("kafka-*/broker.pid")]
        assert len(pids) == 5
        down = tracker("cluster", "down")
        assert down.returncode == 0, down.stdout + down.stderr
        for pid in pids:
            wait_until(lambda p=pid: not Path(f"/proc/{p}").exists()  # type: ignore[misc]
                       or "Z" in Path(f"/proc/{p}/stat").read_text().split()[2],
                       30, message=f"pid {pid} to end")
        assert tracker("cluster", "status").returncode == 1

        again = tracker("cluster", "up", "--sample", str(SAMPLE))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Sample already loaded" in again.stdout
        wait_until(lambda: all(httpx.get(f"{url}/health/", timeout=5).status_code == 200
                               for url in urls), 60, message="both workers ready again")
        equal_to_the_log()
    finally:
        tracker("cluster", "down", timeout=180)
