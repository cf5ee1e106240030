"""Client factories: defaults, override order, error translation and log redaction."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, Message
from structlog.testing import capture_logs

from orchestrator.config import Settings
from orchestrator.errors import BrokerError
from orchestrator.log.kafka import (
    LibrdkafkaLogSink,
    consumer_config,
    make_producer,
    producer_config,
    raise_for_message,
    secret_values,
)


def make_settings(**kafka: str) -> Settings:
    return Settings(bootstrap="127.0.0.1:1", session_timeout_ms=6000, kafka=kafka)


def test_producer_defaults_hash_keys_like_the_java_client() -> None:
    """Producers are idempotent, wait for all replicas and use murmur2 partitioning."""
    config = producer_config(make_settings())
    assert config["partitioner"] == "murmur2_random"
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["bootstrap.servers"] == "127.0.0.1:1"


def test_consumer_defaults_favour_latency_and_exactly_once() -> None:
    """Consumers read committed records, commit manually and heartbeat at a third of the session."""
    config = consumer_config(make_settings(), "g")
    assert config["group.id"] == "g"
    assert config["isolation.level"] == "read_committed"
    assert config["enable.auto.commit"] is False
    assert config["heartbeat.interval.ms"] == 2000
    assert config["fetch.wait.max.ms"] == 10
    assert config["partition.assignment.strategy"] == "range"


def test_pass_through_properties_win_over_overrides() -> None:
    """settings.kafka is merged last, so SASL/TLS settings reach every client."""
    settings = make_settings(**{"security.protocol": "SASL_SSL", "linger.ms": "7"})
    config = producer_config(settings, **{"linger.ms": 0, "client.id": "x"})
    assert config["security.protocol"] == "SASL_SSL"
    assert config["linger.ms"] == "7"
    assert config["client.id"] == "x"


def test_invalid_client_configuration_raises_broker_error() -> None:
    """librdkafka's refusal of a property surfaces as BrokerError."""
    with pytest.raises(BrokerError, match="invalid Kafka client configuration"):
        make_producer(make_settings(**{"no.such.property": "1"}))


def test_raise_for_message_passes_records_and_skips_eof() -> None:
    """A record is reported as one; a partition EOF is skipped unless asked otherwise."""
    assert raise_for_message(Message(topic="t", partition=0, value=b"v")) is True
    eof = Message(topic="t", partition=2, error=KafkaError(KafkaError._PARTITION_EOF))
    assert raise_for_message(eof) is False
    with pytest.raises(BrokerError, match=r"t \[2\]"):
        raise_for_message(eof, ignore_eof=False)


def test_raise_for_message_raises_for_errors() -> None:
    """Any other error becomes a BrokerError naming the code."""
    failed = Message(topic="t", partition=0, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    with pytest.raises(BrokerError, match="UNKNOWN_TOPIC_OR_PART"):
        raise_for_message(failed)


def test_log_sink_masks_secrets() -> None:
    """Secrets from the pass-through properties never reach the logs."""
    settings = make_settings(**{"sasl.password": "hunter2", "sasl.username": "bob"})
    assert secret_values(settings) == ("hunter2",)
    sink = LibrdkafkaLogSink(secret_values(settings))
    with capture_logs() as logs:
        sink.log(logging.WARNING, "%s [%s] %s", "SASL", "rdkafka#producer-1", "bad hunter2 bob")
        sink.on_error(KafkaError(KafkaError._AUTHENTICATION, "auth failed for hunter2"))
    assert [entry["log_level"] for entry in logs] == ["warning", "warning"]
    assert "hunter2" not in repr(logs)
    assert "bob" in logs[0]["message"]
    assert sink.last_error == "auth failed for ***"


def test_log_sink_demotes_connection_failures() -> None:
    """FAIL lines go to DEBUG: on_error already reports the same connection failure."""
    with capture_logs() as logs:
        LibrdkafkaLogSink().log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#x", "refused")
    assert logs[0]["log_level"] == "debug"


def test_log_sink_demotes_repeats() -> None:
    """A broker that stays down costs one warning, not one per reconnect attempt."""
    sink = LibrdkafkaLogSink()
    with capture_logs() as logs:
        for ms in (0, 5, 9):
            refused = f"127.0.0.1:1/bootstrap: Connect failed (after {ms}ms in state CONNECT)"
            sink.on_error(KafkaError(KafkaError._TRANSPORT, refused))
    assert [entry["log_level"] for entry in logs] == ["warning", "debug", "debug"]
