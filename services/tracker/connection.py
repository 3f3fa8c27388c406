"""Connection settings of the plain aiokafka clients (intake, CLI, reconcile, explain).
Without Faust: the intake's own process imports this and not the app."""

from __future__ import annotations

import ssl
from typing import Any

from services.tracker.settings import Settings

# How often every client refreshes its cluster metadata even without an error (aiokafka's
# default: 5 minutes). A consumer resetting the offset of a partition whose leader moved
# asks the old leader again and again without refreshing (aiokafka 0.14.0,
# Fetcher._update_fetch_positions; the same as robinhood/aiokafka#9): after a broker was
# killed, the intake read nothing from such a partition for minutes (test_cluster.py).
METADATA_MAX_AGE_MS = 5_000


def client_options(settings: Settings) -> dict[str, Any]:
    """One set of options for every plain client, so they all reach the cluster alike."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap,
                               "security_protocol": settings.security_protocol,
                               "metadata_max_age_ms": METADATA_MAX_AGE_MS}
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
    if settings.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.sasl_mechanism or "PLAIN",
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password.get_secret_value()
            if settings.sasl_password else None)
    return options
