"""Early dispatch: a batch's task commands leave before its transaction commits.

A command produced inside the transaction reaches a worker only after the commit (about 6 ms on
the embedded broker, several round trips on any broker), and a task's latency pays that twice
in an agent loop's step. With ``early_dispatch`` (the default) the processor sends the batch's
task commands first, through this non-transactional idempotent producer, and then produces the
events and offsets in the transaction. Before the commit it waits for the commands'
acknowledgements (which have long arrived by then); a command the broker refused aborts the
transaction, so a committed ``TaskScheduled`` always has its command in the log.

The price is the other direction: when a transaction aborts (the processor crashed or was
fenced between the send and the commit), its commands were already sent. The next owner of
the partition decides the same inputs again, and the engine is deterministic, so it sends the
same commands (same task id and attempt) once more: the task may run twice. Workers already
run at least once (a worker that dies before its offset commit runs a task again), and a
result for an attempt that is no longer current is ignored, so nothing new is needed to cope.
``ORCH_EARLY_DISPATCH=false`` keeps every command inside the transaction.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message

from orchestrator.config import Settings
from orchestrator.errors import TransactionError
from orchestrator.log.kafka import make_producer

__all__ = ["Dispatcher"]


class Dispatcher:
    """Sends task commands outside the transaction and confirms them before the commit."""

    def __init__(self, settings: Settings) -> None:
        self._producer = make_producer(settings, None, **{"linger.ms": 0})
        self._failures: list[str] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: list[Any]) -> None:
        """Produce one command now; its acknowledgement is checked by :meth:`confirm`."""
        self._producer.produce(topic, key=key, value=value, headers=headers, on_delivery=self._on)

    def confirm(self, timeout_s: float) -> None:
        """Wait for every command sent since the last call; raise if any was not delivered."""
        if self._producer.flush(timeout_s):  # returns how many are still unacknowledged
            self._failures.append(f"{len(self._producer)} commands not acknowledged in time")
        failures, self._failures = self._failures, []
        if failures:
            raise TransactionError(f"early dispatch failed: {'; '.join(failures[:3])}")

    def close(self) -> None:
        """Deliver what is still queued (best effort: the log decides what happened)."""
        self._producer.flush(5)

    def _on(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")
