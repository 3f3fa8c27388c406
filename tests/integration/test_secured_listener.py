"""The tracker against a real secured listener: a broker whose client listener is SASL_SSL
(SCRAM-SHA-512 users made at format time, TLS with a certificate of a CA made here). The
worker (its Faust clients and its intake), `tracker produce` and `tracker reconcile` connect
with TRACKER_SECURITY_PROTOCOL=SASL_SSL and friends; a wrong password stops them at start-up
with one line naming the setting; the password is in no log line or output."""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from services.tracker.broker import EmbeddedKafka
from tests.integration.conftest import SAMPLE, Deployment, wait_until
from tests.integration.independent_fold import Expected
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

USER = "tracker"
PASSWORD = f"pw-{uuid.uuid4().hex}"  # unique, so finding it in a log means it leaked


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def make_tls(directory: Path) -> tuple[Path, Path]:
    """A CA, and a server key and certificate for 127.0.0.1 signed by it. Returns the CA
    certificate and the server's PEM (key, then certificate chain) as Kafka reads it."""
    directory.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=tracker test CA", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
            cwd=directory)
    server = directory / "server.pem"
    server.write_text("".join((directory / name).read_text()
                              for name in ("server.key", "server.crt", "ca.pem")))
    return directory / "ca.pem", server


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedKafka, str,
                                                                        Path]]:
    """A broker with a SASL_SSL client listener; returns it, that listener's address and
    the CA file. Its PLAINTEXT listener is for the broker itself (and its readiness probe)."""
    home = tmp_path_factory.mktemp("secured")
    ca, server = make_tls(home / "tls")
    port, controller, secure = free_port(), free_port(), free_port()
    broker = EmbeddedKafka(
        home / "kafka", port=port, controller_port=controller, heap="384m",
        extra_properties=(
            ("listeners", f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
                          f"SASL_SSL://127.0.0.1:{secure}"),
            ("advertised.listeners", f"PLAINTEXT://127.0.0.1:{port},"
                                     f"SASL_SSL://127.0.0.1:{secure}"),
            ("listener.security.protocol.map",
             "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            ("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
             "org.apache.kafka.common.security.scram.ScramLoginModule required;"),
            ("listener.name.sasl_ssl.ssl.keystore.type", "PEM"),
            ("listener.name.sasl_ssl.ssl.keystore.location", str(server)),
        ),
        format_args=("--add-scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"))
    broker.start(timeout=120)
    yield broker, f"127.0.0.1:{secure}", ca
    broker.stop()


@pytest.fixture
def secure_deployment(secured: tuple[EmbeddedKafka, str, Path],
                      tmp_path: Path) -> Iterator[Deployment]:
    broker, bootstrap, ca = secured
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    env = {**os.environ, "TRACKER_KAFKA_BOOTSTRAP": bootstrap, "TRACKER_TOPIC_PREFIX": prefix,
           "TRACKER_APP_ID": f"{prefix}tracker", "TRACKER_DATA_DIR": str(tmp_path / "data"),
           "TRACKER_LOG_LEVEL": "info", "TRACKER_SECURITY_PROTOCOL": "SASL_SSL",
           "TRACKER_SASL_MECHANISM": "SCRAM-SHA-512", "TRACKER_SASL_USERNAME": USER,
           "TRACKER_SASL_PASSWORD": PASSWORD, "TRACKER_SSL_CAFILE": str(ca)}
    deployment = Deployment(broker, env, prefix, tmp_path)
    yield deployment
    for worker in deployment.workers:
        worker.stop()


def test_worker_produce_and_reconcile_over_sasl_ssl(secure_deployment: Deployment,
                                                    expected: Expected) -> None:
    deployment = secure_deployment
    worker = deployment.worker()
    worker.start(ready_timeout=90)
    sent = deployment.run_cli("produce", str(SAMPLE), "--allow-invalid")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "rejected 0" in sent.stdout
    target = expected.trailing_twelve_months().quantize(Decimal("0.01"))
    wait_until(lambda: Decimal(worker.get("/commitments/in-ru-100bn-2030/").json()["achieved"])
               == target, 90, message="the sample folded over SASL_SSL")
    reconciled = deployment.run_cli("reconcile", "--url", worker.url)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "No differences" in reconciled.stdout
    shown = deployment.run_cli("config")
    assert shown.returncode == 0 and "TRACKER_SASL_PASSWORD" in shown.stdout

    worker.stop()
    outputs = [worker.log_path.read_text(), sent.stdout, sent.stderr, reconciled.stdout,
               reconciled.stderr, shown.stdout, shown.stderr]
    assert all(PASSWORD not in text for text in outputs), "the password was printed"


@pytest.mark.parametrize("command", [["worker"], ["produce", str(SAMPLE)],
                                     ["reconcile", "--url", "http://127.0.0.1:9"]])
def test_a_wrong_password_stops_at_start_up_with_one_line_naming_the_setting(
        secure_deployment: Deployment, command: list[str]) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    deployment = secure_deployment
    deployment.base_env["TRACKER_SASL_PASSWORD"] = wrong
    done = deployment.run_cli(*command)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ") and "TRACKER_SASL_PASSWORD" in lines[0], lines[0]
    assert "refused the credentials" in lines[0]
    assert wrong not in done.stdout + done.stderr and PASSWORD not in done.stdout + done.stderr


def test_a_certificate_from_an_unknown_ca_stops_at_start_up_naming_the_ca_setting(
        secure_deployment: Deployment) -> None:
    deployment = secure_deployment
    # The system's CAs, which never signed the test broker's certificate.
    deployment.base_env["TRACKER_SSL_CAFILE"] = ssl.get_default_verify_paths().cafile or ""
    done = deployment.run_cli("worker")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "not trusted" in lines[0] and "TRACKER_SSL_CAFILE" in lines[0], lines[0]
