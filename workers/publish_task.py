"""Conductor's KAFKA_PUBLISH and EVENT system tasks: publish a record to the engine's own cluster.

Both wait for the broker's acknowledgement and output where the record landed. Workers run at
least once, so a redelivered task command publishes its record again; EVENT records carry the
``workflow_id`` and ``task_id`` headers for consumers that drop duplicates. Topics under the
engine's prefix are refused: a workflow must not write into the engine's own log.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it without __all__

from orchestrator.config import Settings
from orchestrator.errors import BrokerError, TerminalError
from orchestrator.log.kafka import admin_client, make_producer, produce_and_wait
from orchestrator.log.topics import Topics
from orchestrator.worker import TaskContext
from workers.http_task import request_fields

__all__ = [
    "ClusterPublisher",
    "KafkaRequest",
    "check_cluster",
    "check_not_engine_topic",
    "check_topic",
    "sink_topic",
]

Json = Any

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_SINK_SCHEME = "kafka"


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaRequest:
    """A KAFKA_PUBLISH request: the topic, and the record's key, value and headers as bytes."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    bootstrap: str | None = None

    @classmethod
    def from_input(cls, task_input: Json) -> KafkaRequest:
        """Read ``kafka_request`` (or the top level); raise TerminalError naming a bad field."""
        fields = request_fields(task_input, "kafka_request", "KAFKA_PUBLISH")
        if "value" not in fields:
            raise TerminalError("KAFKA_PUBLISH task input 'value' is missing")
        key = fields.get("key")
        servers = fields.get("bootStrapServers")
        if servers is not None and not isinstance(servers, str):
            raise TerminalError("KAFKA_PUBLISH task input 'bootStrapServers' must be a string")
        return cls(
            topic=check_topic(fields.get("topic"), "KAFKA_PUBLISH task input 'topic'"),
            value=_encode(fields["value"], "value"),
            key=None if key is None or key == "" else _encode(key, "key"),
            headers=_headers(fields.get("headers")),
            bootstrap=servers or None,
        )


class ClusterPublisher:
    """Publishes records to the cluster of its settings; thread-safe, one producer, made lazily.

    A running :class:`~workers.system.SystemWorker` binds the settings it runs with; called
    before that, the publisher reads them from the environment (``ORCH_BOOTSTRAP``...).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None
        self._created: set[str] = set()
        self._lock = threading.Lock()

    def bind(self, settings: Settings) -> None:
        """Publish to the cluster of ``settings`` from now on."""
        with self._lock:
            if settings != self._settings:
                self._reset()
                self._settings = settings

    def close(self) -> None:
        """Wait briefly for records in flight, then drop the clients (made again on next use)."""
        with self._lock:
            self._reset()

    @property
    def settings(self) -> Settings:
        """The bound settings, or the environment's."""
        with self._lock:
            if self._settings is None:
                self._settings = Settings.model_validate({})  # ORCH_* environment
            return self._settings

    def kafka_publish(self, task_input: Json) -> dict[str, Json]:
        """KAFKA_PUBLISH: publish the request's record; output its topic, partition and offset."""
        request = KafkaRequest.from_input(task_input)
        check_cluster(request.bootstrap, self.settings)
        check_not_engine_topic(request.topic, self.settings)
        message = self._publish(request.topic, request.key, request.value, request.headers)
        return {"topic": request.topic, **_position(message)}

    def event(self, task_input: Json, ctx: TaskContext) -> dict[str, Json]:
        """EVENT: publish the input but ``sink`` as JSON to the sink's topic, creating it."""
        if not isinstance(task_input, dict):
            raise TerminalError("EVENT task input must be an object")
        sink = task_input.get("sink")
        topic = check_not_engine_topic(sink_topic(sink), self.settings)
        payload = {key: value for key, value in task_input.items() if key != "sink"}
        payload.setdefault("workflowInstanceId", ctx.workflow_id)
        payload.setdefault("workflowType", ctx.workflow_name)
        self._ensure_topic(topic)
        headers = [("workflow_id", ctx.workflow_id.encode()), ("task_id", ctx.task_id.encode())]
        message = self._publish(topic, ctx.workflow_id.encode(), _encode(payload, "input"), headers)
        return {"sink": sink, "topic": topic, **_position(message), "published": True}

    def _publish(
        self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Message:
        return produce_and_wait(self._producer_client(), topic, key, value, headers or None)

    def _producer_client(self) -> Producer:
        settings = self.settings
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(settings, None, **{"linger.ms": 0})
            return self._producer

    def _ensure_topic(self, topic: str) -> None:
        settings = self.settings
        with self._lock:
            if topic in self._created:
                return
            if self._admin is None:
                self._admin = admin_client(settings)
            admin = self._admin
        _create_topic(admin, topic, settings)
        with self._lock:
            self._created.add(topic)

    def _reset(self) -> None:
        if self._producer is not None:
            self._producer.flush(1.0)
        self._producer, self._admin = None, None
        self._created.clear()


def sink_topic(sink: Json) -> str:
    """The topic of an EVENT sink ``kafka:<topic>``; TerminalError for any other sink."""
    if not isinstance(sink, str) or not sink:
        raise TerminalError("EVENT task input 'sink' is missing; use 'kafka:<topic>'")
    scheme, colon, topic = sink.partition(":")
    if scheme.strip().lower() != _SINK_SCHEME or not colon:
        raise TerminalError(
            f"EVENT sink {sink!r} is not supported: only 'kafka:<topic>' sinks are enabled"
        )
    return check_topic(topic.strip(), f"EVENT sink {sink!r}")


def check_topic(topic: Json, what: str) -> str:
    """``topic`` if it can name a Kafka topic; TerminalError naming ``what`` if not."""
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise TerminalError(
            f"{what} must name a Kafka topic of 1-249 letters, digits, '.', '_' or '-', "
            f"not {topic!r}"
        )
    return topic


def check_not_engine_topic(topic: str, settings: Settings) -> str:
    """``topic`` unless it is one of the engine's own (under its prefix); TerminalError if so."""
    topics = Topics.from_settings(settings)
    owned = (*topics.co_partitioned, topics.definitions, topics.dead_letters)
    prefix = settings.topic_prefix or "tasks."
    if topic in owned or topic.startswith(prefix):
        raise TerminalError(
            f"topic {topic!r} belongs to the engine (prefix {settings.topic_prefix!r}); "
            "workflows cannot publish to it"
        )
    return topic


def check_cluster(servers: str | None, settings: Settings) -> None:
    """Refuse ``bootStrapServers`` naming any cluster but the engine's own (absent is fine)."""
    if servers is None or _addresses(servers) == _addresses(settings.bootstrap):
        return
    raise TerminalError(
        f"publishing to other clusters is not enabled: bootStrapServers {servers!r} is not "
        f"this engine's cluster {settings.bootstrap!r}"
    )


def _addresses(servers: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in servers.split(",") if part.strip())


def _encode(value: Json, field: str) -> bytes:
    """A string as UTF-8, anything else as JSON."""
    if isinstance(value, str):
        return value.encode()
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TerminalError(f"task input '{field}' cannot be encoded as JSON: {exc}") from exc


def _headers(value: Json) -> tuple[tuple[str, bytes], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise TerminalError("KAFKA_PUBLISH task input 'headers' must be an object")
    return tuple((str(name), _encode(item, f"headers.{name}")) for name, item in value.items())


def _position(message: Message) -> dict[str, int]:
    return {"partition": message.partition() or 0, "offset": message.offset() or 0}


def _create_topic(admin: AdminClient, topic: str, settings: Settings) -> None:
    """Create ``topic`` with the engine's partition count unless it exists; BrokerError if not."""
    spec = NewTopic(
        topic, num_partitions=settings.partitions, replication_factor=settings.replication_factor
    )
    timeout = settings.connect_timeout_s
    try:
        futures = admin.create_topics([spec], operation_timeout=timeout, request_timeout=timeout)
        futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise BrokerError(
                f"cannot create topic {topic}: {error.name()}: {error.str()}"
            ) from exc
    except TimeoutError as exc:
        raise BrokerError(f"creating topic {topic} not confirmed within {timeout:g} s") from exc
