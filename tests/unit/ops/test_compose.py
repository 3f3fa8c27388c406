"""docker-compose.yml, checked without a Docker engine: the shape docs/operations.md describes
(Kafka KRaft x3, two or more workers in one group, Prometheus, Grafana), health checks,
volumes, and agreement with the Dockerfile, the CLI and ops/prometheus/prometheus.yml."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.tracker.app import create_faust_app
from services.tracker.cli import cli
from services.tracker.cluster import WORKER_SETTINGS, LocalCluster
from services.tracker.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "ops" / "prometheus" / "prometheus.yml"
BROKERS = ("kafka-1", "kafka-2", "kafka-3")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))  # PyYAML resolves `<<:` merges


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def trackers(services: dict[str, Any]) -> dict[str, Any]:
    return {name: spec for name, spec in services.items() if name.startswith("tracker-")}


def env(spec: dict[str, Any]) -> dict[str, str]:
    value = spec.get("environment", {})
    if isinstance(value, list):
        value = dict(item.split("=", 1) for item in value)
    return {key: str(item) for key, item in value.items()}


def dockerfile_instruction(name: str) -> list[str]:
    """The last ENTRYPOINT / CMD of the Dockerfile, in exec form."""
    lines = [line for line in DOCKERFILE.read_text().splitlines()
             if line.startswith(f"{name} ")]
    assert lines, f"Dockerfile has no {name}"
    return list(json.loads(lines[-1][len(name) + 1:]))


def test_expected_services(services: dict[str, Any]) -> None:
    assert set(BROKERS) <= services.keys()
    assert {"prometheus", "grafana"} <= services.keys()
    assert len(trackers(services)) >= 2


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, spec in services.items():
        check = spec.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), name


def test_trackers_run_the_image_and_command_of_make_run(services: dict[str, Any]) -> None:
    # `make run` -> `tracker up` -> `python -m services.tracker.cli worker`, i.e.
    # `tracker worker`: the console script `tracker` is services.tracker.cli:main.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["tracker"] == "services.tracker.cli:main"
    assert "worker" in {command.name or getattr(command.callback, "__name__", "")
                        for command in cli.registered_commands}
    assert "FROM python:3.11-slim" in DOCKERFILE.read_text()
    assert dockerfile_instruction("ENTRYPOINT") == ["tracker"]
    assert dockerfile_instruction("CMD") == ["worker"]
    images = set()
    for name, spec in trackers(services).items():
        entrypoint = spec.get("entrypoint", dockerfile_instruction("ENTRYPOINT"))
        command = spec.get("command", dockerfile_instruction("CMD"))
        if isinstance(command, str):
            command = command.split()
        assert [*entrypoint, *command] == ["tracker", "worker"], name
        assert spec.get("build") in (".", {"context": "."}), name
        images.add(spec["image"])
    assert len(images) == 1, images


def test_workers_form_one_group_with_distinct_ids_and_hosts(services: dict[str, Any]) -> None:
    workers = {name: env(spec) for name, spec in trackers(services).items()}
    assert len({e["TRACKER_APP_ID"] for e in workers.values()}) == 1
    assert len({e["TRACKER_WORKER_ID"] for e in workers.values()}) == len(workers)
    for name, variables in workers.items():
        # table_route forwards to http://<web host>:<port>: the host must be this service.
        assert variables["TRACKER_WEB_HOST"] == name
        assert variables.get("TRACKER_WEB_BIND") == "0.0.0.0", name
        assert variables["TRACKER_KAFKA_BOOTSTRAP"] == ",".join(f"{b}:9092" for b in BROKERS)
        assert variables["TRACKER_REPLICATION"] == "3"
        assert variables["TRACKER_STANDBY_REPLICAS"] == "1"
        for broker in BROKERS:
            assert services[name]["depends_on"][broker]["condition"] == "service_healthy"


def test_kafka_is_a_three_node_kraft_quorum(services: dict[str, Any]) -> None:
    voters = {f"{index}@{broker}:9093" for index, broker in enumerate(BROKERS, start=1)}
    cluster_ids = set()
    for index, broker in enumerate(BROKERS, start=1):
        spec = services[broker]
        variables = env(spec)
        assert spec["image"] == "apache/kafka:4.1.1"
        assert set(variables["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert variables["KAFKA_NODE_ID"] == str(index)
        assert set(variables["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert f"PLAINTEXT://{broker}:9092" in variables["KAFKA_ADVERTISED_LISTENERS"]
        assert "CONTROLLER://:9093" in variables["KAFKA_LISTENERS"]
        for key in ("KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
            assert variables[key] == "3", (broker, key)
        assert variables["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert any(volume.endswith(":" + variables["KAFKA_LOG_DIRS"])
                   for volume in spec["volumes"]), broker
        cluster_ids.add(variables["CLUSTER_ID"])
    (cluster_id,) = cluster_ids
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)  # a base64 UUID, as Kafka wants


def test_mounts_exist_and_named_volumes_are_declared(compose: dict[str, Any],
                                                     services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, spec in services.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, "declared volumes nobody uses"
    # Everything that holds data sits on a named volume.
    data_paths = {"prometheus": "/prometheus", "grafana": "/var/lib/grafana"}
    data_paths |= dict.fromkeys(BROKERS, "/var/lib/kafka/data")
    data_paths |= dict.fromkeys(trackers(services), "/var/lib/tracker")
    for name, path in data_paths.items():
        assert any(v.split(":")[1] == path and v.split(":")[0] in declared
                   for v in services[name]["volumes"]), f"{name}: {path} not on a volume"


def test_prometheus_scrapes_every_tracker(services: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "tracker"]
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    expected = {f"{name}:{env(spec)['TRACKER_WEB_PORT']}"
                for name, spec in trackers(services).items()}
    assert targets == expected
    mounts = services["prometheus"]["volumes"]
    assert "./ops/prometheus:/etc/prometheus:ro" in mounts
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_grafana_gets_the_provisioning_and_the_dashboard(services: dict[str, Any]) -> None:
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert mounts["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/dashboards/tracker.yml").read_text())["providers"][0]
    assert mounts["./ops/grafana/dashboards"] == provider["options"]["path"]
    source = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text())
    (prometheus,) = source["datasources"]
    assert prometheus["uid"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"


def test_dockerfile_copies_only_what_the_build_context_keeps() -> None:
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
                assert (ROOT / source).exists(), source


# Variables that describe where a service runs (names, ports, paths, identities), not how
# the topology behaves: they differ between compose and `make cluster` by design.
KAFKA_PLACEMENT = {"KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_CONTROLLER_QUORUM_VOTERS",
                   "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
                   "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_INTER_BROKER_LISTENER_NAME",
                   "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_LOG_DIRS", "KAFKA_HEAP_OPTS"}
TRACKER_PLACEMENT = {"TRACKER_KAFKA_BOOTSTRAP", "TRACKER_WORKER_ID", "TRACKER_WEB_HOST",
                     "TRACKER_WEB_BIND", "TRACKER_WEB_PORT", "TRACKER_DATA_DIR",
                     "TRACKER_LOG_LEVEL"}
# What makes the topology production-shaped; compose must state each one.
BEHAVIOUR = ("default.replication.factor", "min.insync.replicas",
             "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
             "transaction.state.log.min.isr", "group.initial.rebalance.delay.ms",
             "auto.create.topics.enable", "log.retention.hours", "num.partitions")


def cluster_properties(tmp_path: Path) -> list[dict[str, str]]:
    """server.properties of each `make cluster` node, as the launcher writes them."""
    written = []
    for node in LocalCluster(tmp_path).nodes:
        node.data_dir.mkdir(parents=True)
        node._write_properties()
        pairs = [line.split("=", 1) for line in node.properties_file.read_text().splitlines()
                 if "=" in line and not line.startswith("#")]
        written.append(dict(pairs))
    return written


def test_compose_brokers_behave_as_the_tested_cluster(services: dict[str, Any],
                                                      tmp_path: Path) -> None:
    # KAFKA_MIN_INSYNC_REPLICAS is min.insync.replicas in the apache/kafka image.
    for broker, properties in zip(BROKERS, cluster_properties(tmp_path), strict=True):
        variables = env(services[broker])
        stated = {name.removeprefix("KAFKA_").lower().replace("_", "."): value
                  for name, value in variables.items()
                  if name.startswith("KAFKA_") and name not in KAFKA_PLACEMENT}
        for key, value in stated.items():
            assert properties.get(key) == value, (
                f"{broker}: {key}={value} in compose, {properties.get(key)} in make cluster")
        for key in BEHAVIOUR:
            assert key in stated, f"{broker}: compose does not state {key}"
        assert properties["node.id"] == variables["KAFKA_NODE_ID"]


def test_compose_workers_behave_as_the_tested_workers(services: dict[str, Any]) -> None:
    for name, spec in trackers(services).items():
        variables = env(spec)
        behaviour = {key: value for key, value in variables.items()
                     if key not in TRACKER_PLACEMENT}
        assert behaviour == WORKER_SETTINGS, name


def test_every_producer_of_the_worker_waits_for_all_replicas() -> None:
    # Compose and `make cluster` run the same worker; acks and idempotence are not
    # configurable, so they cannot drift - this checks what they are.
    app = create_faust_app(Settings())
    assert app.conf.producer_acks == -1
    producer = app.producer
    assert producer._settings_extra() == {"acks": "all", "enable_idempotence": True}
