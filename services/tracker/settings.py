"""Configuration from environment variables, all prefixed ``TRACKER_``, checked at start-up."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.tracker.broker import PROJECT_ROOT


class Settings(BaseSettings):
    """Every knob of the service. ``tracker config`` prints the effective values."""

    model_config = SettingsConfigDict(env_prefix="TRACKER_", frozen=True, extra="ignore")

    app_id: str = Field("commitment-tracker", description="Faust app id = consumer group.")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic_prefix: str = Field("", description="Prefix for every topic name (isolates tests).")
    partitions: int = Field(4, ge=1, le=256, description="Partitions of the keyed topics.")
    replication: int = Field(1, ge=1, description="Replication factor of created topics.")

    web_host: str = Field("127.0.0.1", description="Host this worker is reachable at.")
    web_bind: str = Field("127.0.0.1", description="Interface the web server listens on.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the HTTP views.")
    worker_id: str = Field("worker-1", description="Static group membership id of this worker.")
    standby_replicas: int = Field(0, ge=0, description="Faust table standby replicas.")

    data_dir: Path = Field(PROJECT_ROOT / ".data", description="Broker data, pids and logs.")
    broker_port: int = Field(9092, description="Embedded broker client port.")
    broker_controller_port: int = Field(9093, description="Embedded broker controller port.")
    broker_heap: str = Field("768m", description="JVM heap of the embedded broker.")

    max_event_bytes: int = Field(64 * 1024, ge=256, description="Larger payloads are refused.")
    # Under a backlog a larger batch touches each ledger month with more events, so fewer
    # changelog records per event are written, and read back on restart.
    intake_batch_size: int = Field(
        10_000, ge=1, le=100_000,
        description="Most source records the intake validates and forwards as one batch.")
    intake_linger_ms: int = Field(
        5, ge=0, le=1000,
        description="Milliseconds the intake gathers records after the first of a batch.")
    # Below the broker's default message.max.bytes (1 MiB): a larger record is refused.
    intake_record_max_bytes: int = Field(
        512 * 1024, ge=64 * 1024, le=960 * 1024,
        description="Largest ledger-input record the intake writes (a batch is split).")
    intake_crash_after_batches: int | None = Field(
        None, ge=1, description="Tests only: kill -9 the worker once the intake's n-th "
        "batch has reached the broker, before its source offsets are committed.")
    fold_crash_after_records: int | None = Field(
        None, ge=1, description="Tests only: kill -9 the worker once the fold's n-th "
        "record has queued its changelog writes, before its offset is committed.")
    producer_linger_ms: int = Field(
        5, ge=0, le=1000, description="Milliseconds the producer waits to batch records.")
    publish_interval: float = Field(
        0.5, gt=0, le=60, description="Seconds between metric/progress-snapshot refreshes.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    @cached_property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def faust_data_dir(self) -> Path:
        """This worker's Faust data directory: its table state (the roots on disk, the
        ledgers saved at its last clean stop)."""
        return self.data_dir / "faust" / self.worker_id


class TopicNames:
    """Contract topic names, with the optional prefix applied."""

    def __init__(self, prefix: str) -> None:
        self.trade = f"{prefix}trade-transactions"
        self.energy = f"{prefix}energy-transactions"
        self.defense = f"{prefix}defense-transactions"
        self.commitments = f"{prefix}commitments"
        self.fx_rates = f"{prefix}fx-rates"
        self.dead_letters = f"{prefix}dead-letters"
        self.progress = f"{prefix}progress-updates"
        # Internal: validated events re-keyed by canonical pair, plus reference data
        # broadcast to every partition (see services/tracker/agents.py).
        self.ledger = f"{prefix}tracker-ledger-input"

    @property
    def transactions(self) -> tuple[str, str, str]:
        return (self.trade, self.energy, self.defense)

    def sector_of(self, topic: str) -> str:
        return {self.trade: "trade", self.energy: "energy", self.defense: "defense"}[topic]
