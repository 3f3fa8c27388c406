"""A real Prometheus scrapes a live worker fed with the sample: every PromQL query of the
Grafana dashboard returns data, and every alert rule evaluates without error, both through
the Prometheus HTTP API and as loaded rules.

Prometheus is Debian's `prometheus` package (ops/install-test-deps.sh). Without it this test
fails: it never skips."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ops.grafana.build_dashboard import promql_expressions
from tests.integration.conftest import PROJECT_ROOT, Deployment, Worker, wait_until
from tests.ports import free_port

pytestmark = pytest.mark.integration

SAMPLE = PROJECT_ROOT / "data" / "sample.jsonl"
OPS_PROMETHEUS = PROJECT_ROOT / "ops" / "prometheus"
SCRAPE_INTERVAL = "1s"
# Grafana's $__rate_interval is at least four scrape intervals; 15 s covers enough 1 s scrapes
# that every rate() here sees samples from after the sample was produced.
RATE_INTERVAL = "15s"


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}: "
                                 f"{self.log_path.read_text()[-3000:]}")
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = answer.json()
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] in ("vector", "scalar"), (expr, data)
        return list(data["result"]) if data["resultType"] == "vector" else [data["result"]]


def scrape_config(worker: Worker) -> dict[str, Any]:
    """The committed ops/prometheus/prometheus.yml, pointed at the live worker and sped up."""
    config = yaml.safe_load((OPS_PROMETHEUS / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": SCRAPE_INTERVAL,
                         "evaluation_interval": SCRAPE_INTERVAL}
    config["rule_files"] = [str(OPS_PROMETHEUS / name) for name in config["rule_files"]]
    (tracker,) = [job for job in config["scrape_configs"] if job["job_name"] == "tracker"]
    tracker |= {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                "static_configs": [{"targets": [worker.url.removeprefix("http://")]}]}
    config["scrape_configs"] = [tracker]
    return dict(config)


@pytest.fixture
def prometheus_binary() -> str:
    """Checked before any broker or worker starts: missing Prometheus fails at once."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run ops/install-test-deps.sh (Debian "
                    "package `prometheus`)")
    return binary


@pytest.fixture
def live_worker(deployment: Deployment) -> Worker:
    worker = deployment.worker()
    worker.start()
    return worker


@pytest.fixture
def prometheus(prometheus_binary: str, live_worker: Worker,
               tmp_path: Path) -> Iterator[Prometheus]:
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(live_worker)))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [prometheus_binary, f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Prometheus(process, f"http://127.0.0.1:{port}", log_path)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((OPS_PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_dashboard_queries_and_alert_rules_on_a_live_worker(
        prometheus_binary: str, deployment: Deployment, live_worker: Worker,
        prometheus: Prometheus) -> None:
    started = time.monotonic()

    def worker_scraped() -> bool:
        return any(sample["value"][1] == "1"
                   for sample in prometheus.query('up{job="tracker"}'))

    wait_until(worker_scraped, 30, message=f"prometheus to scrape {live_worker.url}/metrics "
               f"({prometheus.log_path})")

    done = deployment.run_cli("produce", str(SAMPLE), "--allow-invalid")
    assert done.returncode == 0, done.stderr

    def sample_folded() -> bool:  # the figure test_pipeline.py checks for the full sample
        body = live_worker.get("/commitments/in-ru-100bn-2030/").json()
        return bool(body["achieved"] == "68700000000.0000")

    wait_until(sample_folded, 40, message="the worker to fold the sample")

    def scraped_after_the_fold() -> bool:
        rows = prometheus.query('sum(tracker_total_usd{pair="IN-RU", sector="all", '
                                'period="FY2023-24"})')
        return bool(rows) and float(rows[0]["value"][1]) == pytest.approx(65.7e9, rel=1e-9)

    wait_until(scraped_after_the_fold, 15, message="prometheus to scrape the folded totals")

    expressions = promql_expressions(RATE_INTERVAL)
    empty: dict[str, list[dict[str, Any]]] = {}

    def every_query_has_data() -> bool:
        empty.clear()
        for expr in expressions:
            result = prometheus.query(expr)  # raises on a PromQL error
            if not result:
                empty[expr] = result
        return not empty

    try:
        wait_until(every_query_has_data, 20, interval=1.0,
                   message="every dashboard query to return data")
    except AssertionError:
        raise AssertionError(f"dashboard queries without data: {sorted(empty)}") from None

    # Spot checks that the numbers are the sample's, not just "some data".
    ratios = {sample["metric"]["commitment_id"]: float(sample["value"][1])
              for sample in prometheus.query(expressions[0])}
    assert 0 < ratios["in-ru-100bn-2030"] < 1
    assert ratios["in-ru-30bn-2025"] >= 1
    fiscal = {(s["metric"]["sector"], s["metric"]["period"]): float(s["value"][1])
              for s in prometheus.query(next(e for e in expressions if "FY.*" in e))}
    fy2023 = sum(value for (_, period), value in fiscal.items() if period == "FY2023-24")
    assert fy2023 == pytest.approx(65.7e9, rel=1e-9)  # the three sectors add up
    dead = prometheus.query('sum(tracker_events_total{outcome="dead_letter"})')
    assert float(dead[0]["value"][1]) > 0  # the sample carries malformed records on purpose

    # Alert rules: each expression is valid PromQL on the live series (an empty result just
    # means the alert would not fire), and Prometheus itself loaded and evaluated each rule.
    rules = alert_rules()
    for rule in rules:
        prometheus.query(rule["expr"])

    def rules_evaluated() -> list[dict[str, Any]]:
        loaded = [rule for group in prometheus.api("rules", type="alert")["groups"]
                  for rule in group["rules"]]
        never = "0001-01-01"  # Go's zero time: not evaluated yet
        return [] if any(rule["lastEvaluation"].startswith(never) for rule in loaded) else loaded

    loaded = wait_until(rules_evaluated, 15, message="prometheus to evaluate the alert rules")
    assert {rule["name"] for rule in loaded} == {rule["alert"] for rule in rules}
    for rule in loaded:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
    firing = {rule["name"] for rule in loaded if rule["state"] == "firing"}
    assert "TrackerWorkerDown" not in firing
    assert time.monotonic() - started < 60
