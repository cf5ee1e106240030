"""Reading the chaos run's log: a follower for progress, and every workflow's history."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import TopicPartition

from orchestrator.config import Settings
from orchestrator.engine.records import TERMINAL_EVENTS, Event
from orchestrator.log.kafka import make_consumer
from orchestrator.log.reader import read_events
from orchestrator.log.topics import Topics

TERMINAL_NAMES = {kind.__name__.encode() for kind in TERMINAL_EVENTS}


class Progress:
    """Follows ``events`` in the background: which workflows ended, for progress and the drain."""

    def __init__(self, settings: Settings) -> None:
        self.ended: set[str] = set()
        self.events = 0
        self._stop = threading.Event()
        topic = Topics.from_settings(settings).events
        self._consumer: Any = make_consumer(settings, None)
        self._consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
        self._thread = threading.Thread(target=self._run, name="chaos-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for message in self._consumer.consume(1000, 0.2):
                    if message.error() is not None:
                        continue
                    self.events += 1
                    if dict(message.headers() or ()).get("type") in TERMINAL_NAMES:
                        self.ended.add(message.key().decode())
        finally:
            self._consumer.close()

    def close(self) -> None:
        """Stop following."""
        self._stop.set()
        self._thread.join(10)


def histories(settings: Settings) -> dict[str, list[Event]]:
    """Every workflow's events, read from the log from the beginning."""
    found: dict[str, list[Event]] = {}
    for event in read_events(settings, timeout=120):
        found.setdefault(event.workflow_id, []).append(event)
    return found
