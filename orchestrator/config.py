"""Configuration: one frozen settings object, read from flags and ``ORCH_*`` environment variables.

Kafka client settings pass through untouched: ``ORCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` becomes
``security.protocol=SASL_SSL`` on every producer, consumer and admin client.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

KAFKA_ENV_PREFIX = "ORCH_KAFKA_"
SECRET_KEYS = ("password", "secret", "token", "key.pem", "private")


def kafka_overrides_from_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Kafka client properties given as ``ORCH_KAFKA_<PROPERTY>`` environment variables."""
    env = os.environ if environ is None else environ
    return {
        name[len(KAFKA_ENV_PREFIX) :].lower().replace("_", "."): value
        for name, value in env.items()
        if name.startswith(KAFKA_ENV_PREFIX)
    }


class Settings(BaseSettings):
    """Everything a process of the orchestrator needs to know about its surroundings."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", frozen=True, extra="ignore")

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    topic_prefix: str = Field("orch.", description="prefix of every topic name")
    state_dir: Path = Field(Path("state"), description="where processors keep RocksDB state")
    partitions: int = Field(6, ge=1, description="partitions of requests, results and events")
    replication_factor: int = Field(1, ge=1, description="replication factor of new topics")
    session_timeout_ms: int = Field(6000, ge=1000, description="consumer group session timeout")
    connect_timeout_s: float = Field(10.0, gt=0, description="how long to wait for the broker")
    early_dispatch: bool = Field(
        True,
        description="processors send task commands before their transaction commits "
        "(lower latency; a command of an aborted transaction may run once more)",
    )
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector URL for traces (none: spans are not exported)"
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="port of /healthz, /readyz and /metrics (0: off)"
    )
    metrics_host: str = Field("127.0.0.1", description="address the metrics port listens on")
    kafka: dict[str, str] = Field(
        default_factory=kafka_overrides_from_env,
        description="extra librdkafka properties (SASL/TLS...), from ORCH_KAFKA_* variables",
    )

    def redacted_kafka(self) -> dict[str, str]:
        """The pass-through Kafka properties with secrets masked, for logs."""
        return {
            key: "***" if any(word in key for word in SECRET_KEYS) else value
            for key, value in self.kafka.items()
        }
