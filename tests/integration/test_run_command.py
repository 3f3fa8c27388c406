"""What `make run` does (`tracker up --sample ...`), on its own ports and data directory:
broker and worker start, the sample is loaded once, and after `tracker down` and a second
`tracker up` the topics, their records and the tables are all still there."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from tests.integration.conftest import PROJECT_ROOT, wait_until
from tests.ports import free_port

SAMPLE = PROJECT_ROOT / "data" / "sample.jsonl"


def tracker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.tracker.cli", *args],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)


async def count_records(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        starts = await consumer.beginning_offsets(list(partitions))
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


def test_up_down_up_keeps_topics_records_and_tables(tmp_path: Path) -> None:
    broker_port, web_port = free_port(), free_port()
    env = {**os.environ, "TRACKER_DATA_DIR": str(tmp_path / "data"),
           "TRACKER_BROKER_PORT": str(broker_port),
           "TRACKER_BROKER_CONTROLLER_PORT": str(free_port()),
           "TRACKER_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker_port}",
           "TRACKER_WEB_PORT": str(web_port)}
    url = f"http://127.0.0.1:{web_port}"
    trade_lines = sum('"trade-transactions"' in line for line in SAMPLE.read_text().splitlines())
    try:
        first = tracker(env, "up", "--sample", str(SAMPLE))
        assert first.returncode == 0, first.stdout + first.stderr
        assert "in-ru-100bn-2030" in first.stdout, "the status table is printed"
        assert httpx.get(f"{url}/health/").status_code == 200
        wait_until(lambda: httpx.get(f"{url}/commitments/in-ru-100bn-2030/").json()["achieved"]
                   == "68700000000.0000", 60, message="sample folded")
        bootstrap = f"127.0.0.1:{broker_port}"
        assert asyncio.run(count_records(bootstrap, "trade-transactions")) == trade_lines

        down = tracker(env, "down")
        assert down.returncode == 0, down.stderr
        assert "stopped" in down.stdout

        second = tracker(env, "up", "--sample", str(SAMPLE))
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already loaded" in second.stdout
        assert asyncio.run(count_records(bootstrap, "trade-transactions")) == trade_lines
        body = httpx.get(f"{url}/commitments/in-ru-100bn-2030/").json()
        assert body["achieved"] == "68700000000.0000", "tables recovered from their changelogs"
    finally:
        tracker(env, "down")
