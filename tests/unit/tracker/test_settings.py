"""Configuration: security settings reach every Kafka client; secrets stay hidden."""

from __future__ import annotations

import pytest

from services.tracker.app import broker_credentials
from services.tracker.connection import METADATA_MAX_AGE_MS, client_options
from services.tracker.settings import Settings


def test_plaintext_by_default() -> None:
    settings = Settings()
    assert client_options(settings) == {"bootstrap_servers": "127.0.0.1:9092",
                                        "security_protocol": "PLAINTEXT",
                                        "metadata_max_age_ms": METADATA_MAX_AGE_MS}
    assert broker_credentials(settings) is None


def test_sasl_ssl_reaches_faust_and_the_plain_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_KAFKA_BOOTSTRAP", "k1:9093,k2:9093")
    monkeypatch.setenv("TRACKER_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TRACKER_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TRACKER_SASL_USERNAME", "tracker")
    monkeypatch.setenv("TRACKER_SASL_PASSWORD", "s3cret-value")
    settings = Settings()
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret-value"
    assert options["ssl_context"] is not None
    credentials = broker_credentials(settings)
    assert credentials is not None and credentials.mechanism.value == "SCRAM-SHA-512"
    # The secret never shows in the settings' text form (logs, `tracker config`).
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in str(
        settings.sasl_password)


def test_invalid_configuration_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_WEB_PORT", "seventy")
    with pytest.raises(ValueError, match="web_port"):
        Settings()
