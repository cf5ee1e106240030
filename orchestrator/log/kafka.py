"""Thin, typed factories over confluent-kafka, configured from one :class:`Settings`.

Every client gets the same defaults (murmur2 partitioning, idempotence, read_committed,
low-latency fetches), then the caller's overrides, then ``settings.kafka`` last, so SASL/TLS
properties reach every producer, consumer and admin client. librdkafka's log lines and errors go to
structlog with the configured secrets masked.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from orchestrator.config import SECRET_KEYS, Settings
from orchestrator.errors import BrokerError, BrokerUnreachableError
from orchestrator.telemetry import get_logger

__all__ = [
    "DEFAULT_DELIVERY_TIMEOUT_S",
    "Headers",
    "KafkaConfig",
    "LibrdkafkaLogSink",
    "admin_client",
    "admin_config",
    "check_reachable",
    "consumer_config",
    "make_consumer",
    "make_producer",
    "produce_and_wait",
    "producer_config",
    "raise_for_message",
    "secret_values",
]

KafkaConfig = dict[str, Any]
"""librdkafka properties by name, plus confluent-kafka's callbacks (``error_cb``, ``logger``)."""

Headers = Mapping[str, bytes | str] | Sequence[tuple[str, bytes | str]]
"""Record headers, as a mapping or as (name, value) pairs."""

DEFAULT_DELIVERY_TIMEOUT_S = 10.0
_PARTITION_BY_KEY = -1  # librdkafka's RD_KAFKA_PARTITION_UA: let the partitioner choose

_Client = TypeVar("_Client", Producer, Consumer, AdminClient)
_log = get_logger("orchestrator.kafka")


# Configuration ---------------------------------------------------------------------------------


def producer_config(settings: Settings, **overrides: Any) -> KafkaConfig:
    """Producer properties: idempotent, ``acks=all``, keys hashed like the Java client."""
    defaults: KafkaConfig = {
        "bootstrap.servers": settings.bootstrap,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "none",
    }
    return _merge(settings, defaults, overrides)


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> KafkaConfig:
    """Consumer properties: manual commits, read_committed, range assignment, 10 ms fetch wait."""
    defaults: KafkaConfig = {
        "bootstrap.servers": settings.bootstrap,
        "group.id": group_id,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.session_timeout_ms // 3,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.wait.max.ms": 10,
        # range keeps partition p of requests, results and events on one instance.
        "partition.assignment.strategy": "range",
    }
    return _merge(settings, defaults, overrides)


def admin_config(settings: Settings, **overrides: Any) -> KafkaConfig:
    """Admin client properties: the bootstrap address and the pass-through settings."""
    return _merge(settings, {"bootstrap.servers": settings.bootstrap}, overrides)


def _merge(settings: Settings, defaults: KafkaConfig, overrides: Mapping[str, Any]) -> KafkaConfig:
    return {**defaults, **overrides, **settings.kafka}


# Clients ---------------------------------------------------------------------------------------


def make_producer(
    settings: Settings, transactional_id: str | None = None, **overrides: Any
) -> Producer:
    """A producer; transactional when ``transactional_id`` is given (call ``init_transactions``)."""
    if transactional_id is not None:
        overrides = {"transactional.id": transactional_id, **overrides}
    config = producer_config(settings, **overrides)
    return _create(Producer, _with_log_sink(settings, config))


def make_consumer(settings: Settings, group_id: str | None = None, **overrides: Any) -> Consumer:
    """A consumer in ``group_id``; without one, a throwaway group for ``assign()``-only readers.

    librdkafka insists on a ``group.id``. A reader that only assigns partitions and never commits
    leaves no trace of its throwaway group on the broker.
    """
    group = (
        group_id if group_id is not None else f"{settings.topic_prefix}reader.{uuid.uuid4().hex}"
    )
    config = consumer_config(settings, group, **overrides)
    return _create(Consumer, _with_log_sink(settings, config))


def admin_client(settings: Settings, **overrides: Any) -> AdminClient:
    """An admin client for creating and describing topics."""
    config = admin_config(settings, **overrides)
    return _create(AdminClient, _with_log_sink(settings, config))


def _with_log_sink(settings: Settings, config: KafkaConfig) -> KafkaConfig:
    sink = LibrdkafkaLogSink(secret_values(settings))
    return {"error_cb": sink.on_error, "logger": sink, **config}


def _create(factory: Callable[[KafkaConfig], _Client], config: KafkaConfig) -> _Client:
    try:
        return factory(config)
    except (KafkaException, ValueError, TypeError) as exc:
        raise BrokerError(f"invalid Kafka client configuration: {exc}") from exc


# Logs and errors -------------------------------------------------------------------------------


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Values of pass-through properties whose names mark them as secrets."""
    return tuple(
        value
        for key, value in settings.kafka.items()
        if value and any(word in key for word in SECRET_KEYS)
    )


class LibrdkafkaLogSink:
    """Writes librdkafka's logs (``logger``) and errors (``error_cb``) to structlog.

    Secrets are masked before anything is written. A message repeated within
    ``repeat_window_s`` drops to DEBUG, so a broker that stays down costs one warning, not one per
    reconnect. ``quiet`` demotes everything to DEBUG, for a probe that reports its own failure;
    the last error is kept either way.
    """

    def __init__(
        self, secrets: Sequence[str] = (), *, quiet: bool = False, repeat_window_s: float = 30.0
    ) -> None:
        self._secrets = tuple(secret for secret in secrets if secret)
        self._quiet = quiet
        self._repeat_window_s = repeat_window_s
        self._last_logged: dict[str, float] = {}
        self.last_error: str | None = None

    def log(self, level: int, fmt: str, *args: object) -> None:
        """Write one librdkafka log line; confluent-kafka calls this as ``logging.Logger.log``."""
        facility = str(args[0]) if len(args) == 3 else ""
        text = self._redact(str(args[-1]) if len(args) == 3 else fmt % args)
        # FAIL lines repeat what on_error reports about the same broker connection.
        level = logging.DEBUG if facility == "FAIL" else self._level(level, text)
        _log.log(level, "librdkafka", facility=facility, message=text)

    def on_error(self, error: KafkaError) -> None:
        """Write an error librdkafka reports outside any request (broker down, fatal errors)."""
        text = self._redact(error.str())
        self.last_error = text
        level = self._level(logging.ERROR if error.fatal() else logging.WARNING, text)
        _log.log(level, "kafka error", code=error.name(), reason=text)

    def _level(self, level: int, text: str) -> int:
        if self._quiet or level <= logging.DEBUG:
            return logging.DEBUG
        key = _VARYING_SUFFIX.sub("", text)
        now = time.monotonic()
        last = self._last_logged.get(key)
        if last is not None and now - last < self._repeat_window_s:
            return logging.DEBUG
        if len(self._last_logged) >= 256:
            self._last_logged.clear()
        self._last_logged[key] = now
        return level

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# librdkafka appends "(after 12ms in state CONNECT)" and similar, which differs on every retry.
_VARYING_SUFFIX = re.compile(
    r"\s*\(after \d+ms in state \w+(, \d+ identical error\(s\) suppressed)?\)"
)


def raise_for_message(msg: Message, *, ignore_eof: bool = True) -> bool:
    """Raise :class:`BrokerError` if ``msg`` carries an error; return whether it is a record.

    A partition-EOF event returns ``False`` when ``ignore_eof`` is set and raises otherwise.
    """
    error = msg.error()
    if error is None:
        return True
    if ignore_eof and error.code() == KafkaError._PARTITION_EOF:
        return False
    where = f"{msg.topic()} [{msg.partition()}]" if msg.topic() else "the consumer"
    cause = KafkaException(error)
    raise BrokerError(f"Kafka error on {where}: {error.name()}: {error.str()}") from cause


# Reachability and delivery ---------------------------------------------------------------------


def check_reachable(settings: Settings, timeout: float | None = None) -> None:
    """Return once a broker answers a metadata request; raise within ``timeout`` seconds otherwise.

    ``timeout`` defaults to ``settings.connect_timeout_s``. librdkafka retries connections forever,
    so the bound comes from the metadata request's own timeout.
    """
    seconds = settings.connect_timeout_s if timeout is None else timeout
    sink = LibrdkafkaLogSink(secret_values(settings), quiet=True)
    admin = _create(
        AdminClient, {**admin_config(settings), "error_cb": sink.on_error, "logger": sink}
    )
    try:
        admin.list_topics(timeout=seconds)
    except KafkaException as exc:
        admin.poll(0)  # serve queued error callbacks so the message names the cause
        detail = sink.last_error or str(exc.args[0])
        raise BrokerUnreachableError(
            f"cannot reach Kafka at {settings.bootstrap} within {seconds:g} s ({detail}); "
            "is the broker running and is --bootstrap / ORCH_BOOTSTRAP right?"
        ) from exc


def produce_and_wait(
    producer: Producer,
    topic: str,
    key: str | bytes | None,
    value: bytes | None,
    headers: Headers | None = None,
    *,
    partition: int | None = None,
    timeout: float = DEFAULT_DELIVERY_TIMEOUT_S,
) -> Message:
    """Produce one record and wait for the broker's acknowledgement; return the delivered record.

    Raises :class:`BrokerError` when the record is refused, fails, or is not acknowledged in
    ``timeout`` seconds. Inside a transaction, acknowledged still means invisible to read_committed
    consumers until the commit.
    """
    outcome: list[tuple[KafkaError | None, Message]] = []
    try:
        producer.produce(
            topic,
            value=value,
            key=key,
            partition=_PARTITION_BY_KEY if partition is None else partition,
            headers=_header_list(headers),
            on_delivery=lambda error, msg: outcome.append((error, msg)),
        )
    except (KafkaException, BufferError) as exc:
        raise BrokerError(f"cannot produce to {topic}: {exc}") from exc
    return _await_delivery(producer, topic, outcome, timeout)


def _await_delivery(
    producer: Producer,
    topic: str,
    outcome: list[tuple[KafkaError | None, Message]],
    timeout: float,
) -> Message:
    deadline = time.monotonic() + timeout
    while not outcome:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(
                f"delivery to {topic} not acknowledged within {timeout:g} s "
                "(the record may still arrive later)"
            )
        producer.flush(remaining)
    error, msg = outcome[0]
    if error is not None:
        cause = KafkaException(error)
        raise BrokerError(f"delivery to {topic} failed: {error.name()}: {error.str()}") from cause
    return msg


def _header_list(headers: Headers | None) -> list[tuple[str, str | bytes | None]] | None:
    if headers is None:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(name, value) for name, value in pairs]
