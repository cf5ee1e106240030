"""Produce records from async request handlers and await the broker's acknowledgement.

One librdkafka producer is shared by every request; a thread serves its delivery callbacks and
resolves each request's future on the event loop. Requests in flight at the same time travel
in one produce batch, which is what lets one API process accept thousands of starts a second
while every answer still means "acknowledged by the broker".
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException

from orchestrator.config import Settings
from orchestrator.errors import BrokerError, SchemaError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_producer, produce_and_wait

DELIVERY_TIMEOUT_S = 15.0


class Publisher:
    """A shared producer whose sends are awaitable."""

    def __init__(self, settings: Settings) -> None:
        overrides = {"linger.ms": 1, "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000)}
        self._producer = make_producer(settings, None, **overrides)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="publisher", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def send(
        self,
        topic: str,
        key: str,
        record: Any,
        *,
        partition: int,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Produce ``record`` (Avro) and return once the broker acknowledged it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def delivered(error: KafkaError | None, _msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, future, topic, error)

        try:
            self._producer.produce(
                topic,
                value=encode(record),
                key=key,
                partition=partition,
                headers=[("type", CODEC.type_name(record)), *(headers or {}).items()],
                on_delivery=delivered,
            )
        except (KafkaException, BufferError) as exc:
            raise BrokerError(f"cannot produce to {topic}: {exc}") from exc
        await asyncio.wait_for(future, DELIVERY_TIMEOUT_S + 1)

    def send_sync(
        self, topic: str, key: str, value: bytes | None, type_name: str | None = None
    ) -> None:
        """Produce encoded ``value`` (a tombstone when None) to partition 0; await the ack."""
        headers = {"type": type_name} if type_name else None
        produce_and_wait(self._producer, topic, key, value, headers, partition=0)

    def close(self) -> None:
        """Deliver what is pending and stop the delivery thread."""
        self._producer.flush(5)
        self._stop.set()
        self._thread.join(timeout=5)


def encode(record: Any) -> bytes:
    """The record's bytes; :class:`SchemaError` (a 400) when its JSON has no encoding.

    orjson refuses integers beyond 64 bits and nesting deeper than 254 levels, which a request
    body parsed by the standard library may hold.
    """
    try:
        return CODEC.encode(record)
    except orjson.JSONEncodeError as exc:
        raise SchemaError(f"cannot encode {type(record).__name__}: {exc}") from exc


def _settle(future: asyncio.Future[None], topic: str, error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(BrokerError(f"delivery to {topic} failed: {error.str()}"))
