"""ops/prometheus: the scrape config and the alert rules pass Prometheus' own checks, and
the alert rules behave as intended on synthetic series (`promtool test rules`).

promtool comes from Debian's `prometheus` package (ops/install-test-deps.sh). Without it
these tests fail: a skipped check would let a broken rule file land."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

OPS = Path(__file__).resolve().parents[3] / "ops" / "prometheus"
CONFIG = OPS / "prometheus.yml"
RULES = OPS / "alerts.yml"
RULE_TESTS = OPS / "alerts_test.yml"
CONTRACT_METRICS = {
    "tracker_commitment_target", "tracker_commitment_achieved",
    "tracker_commitment_progress_ratio",
    "tracker_commitment_projected_completion_timestamp_seconds", "tracker_total_usd",
    "tracker_events_total", "tracker_event_lag_seconds", "tracker_processing_latency_seconds",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run ops/install-test-deps.sh (Debian package "
                    "`prometheus`)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=OPS, capture_output=True, text=True, timeout=60,
                          check=False)


def test_config_is_valid(promtool: str) -> None:
    done = run(promtool, "check", "config", str(CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_rules_are_valid(promtool: str) -> None:
    done = run(promtool, "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_behave_on_synthetic_series(promtool: str) -> None:
    done = run(promtool, "test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_rule_tests_make_every_alert_fire() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"]
              for rule in group["rules"]}
    assert fired == alerts


def test_config_loads_the_rules_and_scrapes_the_tracker_job() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert (OPS / config["rule_files"][0]).resolve() == RULES
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "tracker"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["scrape_interval"] == "15s"


def test_every_rule_reads_contract_metrics_only_and_says_which() -> None:
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"]
             for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "TrackerWorkerDown", "DeadLettersGrowing", "CommitmentNoProjection"}
    text = RULES.read_text()
    for rule in rules:
        used = {name for name in CONTRACT_METRICS | {"up"} if name in rule["expr"]}
        assert used, f"{rule['alert']} reads no contract metric"
        assert {"severity"} <= rule["labels"].keys()
        assert {"summary", "description"} <= rule["annotations"].keys()
        # The comment block above each rule names the metrics it uses.
        comment = text[:text.index(f"alert: {rule['alert']}")].rsplit("- alert:", 1)[-1]
        assert "Uses:" in comment, f"{rule['alert']}: no `# Uses:` comment"
