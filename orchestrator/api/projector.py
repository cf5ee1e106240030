"""The projector: a thread that folds every partition of ``events`` into the read model.

It assigns all partitions itself (no consumer group: every API instance keeps its own full
read model), starts each one after the offset its store last folded, and writes one batch per
poll holding the changed workflows, their events, the metrics and the new offsets, so a crash
never folds an event twice. It is *ready* once every partition has reached its end once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from opentelemetry.metrics import Observation

from orchestrator.api.readmetrics import Metrics
from orchestrator.api.readstore import Change, ReadStore, summary_of
from orchestrator.config import Settings
from orchestrator.engine.evolve import evolve
from orchestrator.engine.records import Event, as_json
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import OrchestratorError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_consumer
from orchestrator.log.topics import Topics
from orchestrator.observability.metrics import meter
from orchestrator.processor.definitions import DefinitionTable
from orchestrator.telemetry import get_logger

log = get_logger(__name__)
CACHE_SIZE = 10_000
LAG_EVERY_S = 2.0


@dataclass
class Lag:
    """How far the read model is behind the log."""

    records: int
    partitions: dict[int, int]
    apply_delay_ms: int | None


class Projector:
    """Keeps a :class:`ReadStore` and a :class:`DefinitionTable` up to date from the log."""

    def __init__(self, settings: Settings, store: ReadStore) -> None:
        self.settings = settings
        self.store = store
        self.definitions = DefinitionTable(settings)
        self.metrics = Metrics(store.metrics())
        self.events_folded = 0
        self._topic = Topics(settings.topic_prefix).events
        self._consumer: Any = make_consumer(
            settings,
            group_id=None,
            **{"enable.partition.eof": True, "isolation.level": "read_committed"},
        )
        self._cache: OrderedDict[str, WorkflowState] = OrderedDict()
        self._caught_up: set[int] = set()
        self._at_end: set[int] = set()
        self._positions: dict[int, int] = {}
        self._lag = Lag(0, {}, None)
        self._reachable_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projector", daemon=True)
        self.changed = threading.Condition()

    @property
    def ready(self) -> bool:
        """Whether every partition was read to its end at least once."""
        return len(self._caught_up) >= self.settings.partitions

    @property
    def lag(self) -> Lag:
        """The latest measured lag."""
        return self._lag

    def start(self) -> None:
        """Assign every partition after its stored offset and start folding."""
        stored = self.store.offsets()
        if stored and self._log_replaced(stored):
            log.warning("the events log is shorter than the read model; refolding it from 0")
            self.store.clear()
            self.metrics = Metrics(None)
            stored = {}
        self._consumer.assign(
            [
                TopicPartition(self._topic, p, stored.get(p, -1) + 1)
                for p in range(self.settings.partitions)
            ]
        )
        self._positions = {p: stored.get(p, -1) + 1 for p in range(self.settings.partitions)}
        _instrument(self)
        self._thread.start()

    def _log_replaced(self, stored: dict[int, int]) -> bool:
        """Whether some partition ends before the offset the store folded (a new broker)."""
        # read_uncommitted: its high watermark is the true end, even with a transaction open.
        reader = make_consumer(
            self.settings, group_id=None, **{"isolation.level": "read_uncommitted"}
        )
        try:
            for partition, offset in stored.items():
                topic_partition = TopicPartition(self._topic, partition)
                _, high = reader.get_watermark_offsets(topic_partition, timeout=10.0)
                if high <= offset:
                    return True
            return False
        finally:
            reader.close()

    def stop(self) -> None:
        """Stop folding and close the consumers (the store stays open for its owner)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._consumer.close()
        self.definitions.close()

    def _run(self) -> None:
        measured = 0.0
        while not self._stop.is_set():
            try:
                self._step()
                self.definitions.poll(0)
                with self.changed:
                    self.changed.notify_all()
                if time.monotonic() - measured > LAG_EVERY_S:
                    measured = time.monotonic()
                    self._measure_lag()
            except Exception:  # the projector logs and goes on; the log is intact
                log.exception("read model step failed; retrying")
                time.sleep(1.0)

    def _step(self) -> None:
        changes: dict[str, Change] = {}
        offsets: dict[int, int] = {}
        delay: int | None = None
        folded = 0
        # Wait for one record at most 100 ms, then take what is already there: a quiet log
        # costs one short wait, a busy one is folded as soon as its first record arrives.
        first = self._consumer.consume(1, 0.1)
        messages = first + self._consumer.consume(999, 0) if first else first
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._caught_up.add(message.partition())
                    self._at_end.add(message.partition())
                else:
                    log.warning("events read error", error=str(error))
                continue
            self._at_end.discard(message.partition())
            offsets[message.partition()] = message.offset()
            folded += 1
            event = self._fold(message, changes)
            if event is not None:
                delay = max(delay or 0, int(time.time() * 1000) - event.at)
        if offsets:
            self.store.write(changes, offsets, self.metrics.data)
            for workflow_id, change in changes.items():
                self._remember(workflow_id, change.state)
            for partition, offset in offsets.items():
                self._positions[partition] = offset + 1
            self.events_folded += folded
            self._lag.apply_delay_ms = delay

    def _fold(self, message: Any, changes: dict[str, Change]) -> Event | None:
        try:
            event = CODEC.decode(message.value())
            if not isinstance(event, Event):
                raise OrchestratorError(f"{type(event).__name__} is not an event")
            change = changes.get(event.workflow_id)
            before = change.state if change else self._load(event.workflow_id)
            if before is not None and event.seq <= before.seq:
                return None  # a redelivery after a crash between fold and offset write
            state = evolve(before, event)  # type: ignore[arg-type]
        except (OrchestratorError, ValueError, KeyError) as exc:
            log.error(
                "read model skips an event that does not fold",
                partition=message.partition(),
                offset=message.offset(),
                error=str(exc),
            )
            return None
        self.metrics.apply(before, event)  # type: ignore[arg-type]
        if change is None:
            # The rows last written are those of ``before``: its index keys are derived, not read.
            summary = summary_of(before) if before is not None else None
            change = changes[event.workflow_id] = Change(state, summary)
        change.state = state
        change.events.append(as_json(event))
        return event

    def _load(self, workflow_id: str) -> WorkflowState | None:
        state = self._cache.get(workflow_id)
        if state is not None:
            self._cache.move_to_end(workflow_id)
            return state
        return self.store.state(workflow_id)

    def _remember(self, workflow_id: str, state: WorkflowState) -> None:
        self._cache[workflow_id] = state
        self._cache.move_to_end(workflow_id)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def broker_reachable(self) -> bool:
        """Whether the broker answered a metadata request in the last few lag rounds."""
        return time.monotonic() - self._reachable_at < 5 * LAG_EVERY_S

    def _measure_lag(self) -> None:
        try:
            self._consumer.list_topics(self._topic, timeout=1.0)
            self._reachable_at = time.monotonic()
        except Exception:  # noqa: BLE001 - unreachable is a state readiness reports, not an error
            log.warning("broker did not answer a metadata request")
        behind: dict[int, int] = {}
        for partition, position in self._positions.items():
            if partition in self._at_end:
                # Watermarks may count transaction markers; a partition at EOF is not behind.
                behind[partition] = 0
                continue
            try:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, partition), timeout=1.0
                )
            except Exception:  # noqa: BLE001 - lag is best effort; the next round retries
                log.debug("watermarks unavailable", partition=partition)
                continue
            behind[partition] = max(high - position, 0)
        self._lag = Lag(sum(behind.values()), behind, self._lag.apply_delay_ms)

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Block until ``predicate()`` is true after a fold, or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
        return True


_observed: list[Projector] = []


def _instrument(projector: Projector) -> None:
    """Read-model gauges on the process's meter, reporting the latest started projector."""
    if _observed:
        _observed[0] = projector
        return
    _observed.append(projector)

    def observe(read: Any) -> Any:
        return lambda _options: [Observation(read(_observed[0]))]

    instruments = meter()
    instruments.create_observable_gauge(
        "orch.readmodel.lag",
        [observe(lambda p: p.lag.records)],
        description="events the read model is behind the log",
    )
    instruments.create_observable_gauge(
        "orch.readmodel.apply_delay",
        [observe(lambda p: (p.lag.apply_delay_ms or 0) / 1000)],
        unit="s",
        description="age of the oldest event of the last batch when it was folded",
    )
    instruments.create_observable_counter(
        "orch.readmodel.events_folded",
        [observe(lambda p: p.events_folded)],
        description="events folded into the read model since the process started",
    )
    instruments.create_observable_gauge(
        "orch.readmodel.ready",
        [observe(lambda p: int(p.ready))],
        description="1 once every partition was read to its end",
    )
