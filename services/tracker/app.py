"""The Faust app and its settings, built from ``Settings`` by one function that the worker
command and the tests share."""

from __future__ import annotations

import ssl

import faust

from services.tracker.compat import TrackerApp
from services.tracker.connection import METADATA_MAX_AGE_MS
from services.tracker.settings import Settings


def broker_credentials(settings: Settings) -> faust.auth.Credentials | ssl.SSLContext | None:
    """SASL/SSL from configuration; the password never leaves its SecretStr until here."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
    if protocol == "SSL":
        return context
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    return faust.SASLCredentials(username=settings.sasl_username, password=password,
                                 mechanism=settings.sasl_mechanism or "PLAIN",
                                 ssl_context=context)


def create_faust_app(settings: Settings) -> faust.App:
    bootstrap = ";".join(f"kafka://{host}" for host in settings.kafka_bootstrap.split(","))
    return TrackerApp(
        settings.app_id,
        broker=bootstrap,
        broker_credentials=broker_credentials(settings),
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        producer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        store="memory://",
        datadir=str(settings.faust_data_dir),
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        processing_guarantee="at_least_once",
        # Ready in seconds instead of ~30: a short session lets a restarted worker's old
        # membership expire quickly, the static id lets it take its partitions back at
        # once, and streams do not wait for empty buffers on rebalance.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        consumer_group_instance_id=f"{settings.app_id}-{settings.worker_id}",
        stream_wait_empty=False,
        table_standby_replicas=settings.standby_replicas,
        producer_acks=-1,
        # Batch the re-keyed events and changelog records into fewer produce requests: with
        # Faust's default of 0 ms every record was a request of its own.
        producer_linger_ms=settings.producer_linger_ms,
        # A ledger-input record holds a batch (up to TRACKER_INTAKE_RECORD_MAX_BYTES): the
        # default 1 MiB fetch would hand the fold only a couple at a time.
        consumer_max_fetch_size=16 * 1024 * 1024,
        # ... and Faust's default buffer of 4,096 records per stream would hold gigabytes of
        # them, waiting in memory instead of in Kafka.
        stream_buffer_maxsize=32,
        # The fold sends a batch's changelog records as record batches of up to this size.
        producer_max_batch_size=256 * 1024,
        web_enabled=True,
        web_bind=settings.web_bind,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.web_url,
        logging_config=None,
    )
