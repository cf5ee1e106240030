"""One task type's share of HTTP polling: its consumer, its buffer of commands and their leases.

:class:`Feed` is the consumer side of :mod:`orchestrator.api.conductor.polling`: a thread keeps
the consumer of the group ``<prefix>worker.<type>`` polled into a bounded buffer, hands commands
out once with a :class:`Lease`, and commits the contiguous prefix of done offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import Consumer, Message
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.config import Settings
from orchestrator.engine.records import ExecuteTask, ResultStatus
from orchestrator.errors import OrchestratorError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import admin_client, make_consumer
from orchestrator.log.topics import ensure_task_topic
from orchestrator.telemetry import get_logger
from orchestrator.worker_group import GroupMember, position
from orchestrator.worker_offsets import OffsetTracker

__all__ = ["Feed", "Handout", "Lease", "PollingConfig"]

Json = Any
IDLE_WAIT_S = 0.1  # longest blocking consume; bounds the reaction to close()
COMMIT_INTERVAL_S = 0.05
EXPIRE_INTERVAL_S = 0.5
MAX_RECENT = 10_000  # finished or released leases remembered for late updates, per task type

_log = get_logger("orchestrator.api.polling")


class PollingConfig(BaseSettings):
    """How the HTTP polling bridge buffers and leases commands (``ORCH_POLL_*`` variables)."""

    model_config = SettingsConfigDict(env_prefix="ORCH_POLL_", frozen=True, extra="ignore")

    lease_s: float = Field(
        default=300.0, gt=0, description="a handed-out task not updated for this long is released"
    )
    buffer: int = Field(default=256, ge=1, description="commands buffered per task type")
    wait_ms: int = Field(default=500, ge=0, le=10_000, description="how long a single poll waits")
    max_task_types: int = Field(
        default=256, ge=1, description="task types one API process polls at most (a consumer each)"
    )


@dataclass(frozen=True, slots=True)
class Lease:
    """A command handed out to an HTTP worker: which attempt, where it sits in the log, when."""

    task_type: str
    workflow_id: str
    task_id: str
    ref_name: str
    attempt: int
    partition: int
    offset: int
    leased_at: float  # monotonic seconds of the hand-out or the last IN_PROGRESS update
    namespace: str | None


@dataclass(frozen=True, slots=True)
class _Command:
    task: ExecuteTask
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Handout:
    """A command handed to a poller, and its lease."""

    task: ExecuteTask
    lease: Lease


class Feed(GroupMember):
    """One task type's consumer, buffer and leases.

    The consumer thread owns the consumer and the offset tracker; the buffer and the leases
    are shared with the event loop under ``_lock``; done offsets travel to the consumer thread
    through ``_done``.
    """

    def __init__(
        self, settings: Settings, task_type: str, config: PollingConfig, loop: Any
    ) -> None:
        self.task_type = task_type
        self.topic = ensure_task_topic(admin_client(settings), settings, task_type)
        self.group_id = f"{settings.topic_prefix}worker.{task_type}"
        self._config = config
        self._loop: asyncio.AbstractEventLoop = loop
        self._arrived = asyncio.Event()
        self._lock = threading.Lock()
        self._buffer: deque[_Command] = deque()
        self._leases: dict[tuple[str, str], Lease] = {}
        self._recent: OrderedDict[tuple[str, str], Lease] = OrderedDict()
        self._done: deque[tuple[int, int]] = deque()  # appends and pops are thread-safe
        self._tracker = OffsetTracker()
        self._consumer: Consumer = make_consumer(settings, self.group_id, on_commit=self._on_commit)
        self._paused = False
        self._stop = threading.Event()
        self._log = _log.bind(task_type=task_type, group=self.group_id)
        self._thread = threading.Thread(target=self._run, name=f"poll-{task_type}", daemon=True)
        self._thread.start()

    # Event loop side ----------------------------------------------------------------------------

    async def take(self, count: int, timeout_s: float, namespace: str | None) -> list[Handout]:
        """Up to ``count`` commands, waiting up to ``timeout_s`` for the first; each leased."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._arrived.clear()  # before taking: an arrival after the take sets it again
            handouts = self._hand_out(count, namespace)
            remaining = deadline - time.monotonic()
            if handouts or remaining <= 0:
                return handouts
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return []

    def _hand_out(self, count: int, namespace: str | None) -> list[Handout]:
        now = time.monotonic()
        handouts: list[Handout] = []
        with self._lock:
            while self._buffer and len(handouts) < count:
                command = self._buffer.popleft()
                task = command.task
                lease = Lease(
                    task_type=self.task_type,
                    workflow_id=task.workflow_id,
                    task_id=task.task_id,
                    ref_name=task.ref_name,
                    attempt=task.attempt,
                    partition=command.partition,
                    offset=command.offset,
                    leased_at=now,
                    namespace=namespace,
                )
                replaced = self._leases.pop((task.workflow_id, task.task_id), None)
                if replaced is not None:  # the engine sent the task again (callback, retry)
                    self._done.append((replaced.partition, replaced.offset))
                self._leases[(task.workflow_id, task.task_id)] = lease
                handouts.append(Handout(task, lease))
        return handouts

    def find(self, workflow_id: str, key: str) -> Lease | None:
        """The lease of task id (or reference name) ``key``: active, else finished or released."""
        with self._lock:
            for leases in (self._leases, self._recent):
                found = leases.get((workflow_id, key))
                if found is None:
                    found = next(
                        (
                            lease
                            for lease in reversed(leases.values())
                            if lease.workflow_id == workflow_id and lease.ref_name == key
                        ),
                        None,
                    )
                if found is not None:
                    return found
        return None

    def settled(self, lease: Lease, status: ResultStatus) -> None:
        """The broker acknowledged ``status`` for ``lease``: renew it, or finish it."""
        key = (lease.workflow_id, lease.task_id)
        with self._lock:
            active = self._leases.get(key)
            if active is None or active.offset != lease.offset:
                return  # released, finished or replaced meanwhile: its offset is settled
            if status is ResultStatus.IN_PROGRESS:
                self._leases[key] = replace(active, leased_at=time.monotonic())
                return
            self._retire(key)

    def _retire(self, key: tuple[str, str]) -> None:
        """Move an active lease to the recent ones and count its offset done (lock held)."""
        lease = self._leases.pop(key)
        self._recent[key] = lease
        while len(self._recent) > MAX_RECENT:
            self._recent.popitem(last=False)
        self._done.append((lease.partition, lease.offset))

    # Consumer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._subscribe()
            self._log.info("polling bridge consuming", topic=self.topic)
            next_commit = next_expiry = 0.0
            while not self._stop.is_set():
                self._fetch()
                now = time.monotonic()
                if now >= next_expiry:
                    self._expire(now)
                    next_expiry = now + EXPIRE_INTERVAL_S
                if now >= next_commit:
                    self._settle_done()
                    self._commit(self._tracker.committable(), asynchronous=True)
                    next_commit = now + COMMIT_INTERVAL_S
            self._settle_done()
            self._commit(self._tracker.positions(), asynchronous=False)
        except Exception:
            self._log.exception("polling bridge consumer failed")
            raise
        finally:
            self._leave()

    def _fetch(self) -> None:
        with self._lock:
            room = self._config.buffer - len(self._buffer)
        self._pause(room <= 0)
        messages = self._consumer.consume(max(room, 1), IDLE_WAIT_S)
        commands = [c for c in map(self._command, messages) if c is not None]
        if not commands:
            return
        with self._lock:
            self._buffer.extend(commands)
        with contextlib.suppress(RuntimeError):  # a closed loop: the app is shutting down
            self._loop.call_soon_threadsafe(self._arrived.set)

    def _command(self, message: Message) -> _Command | None:
        error = message.error()
        if error is not None:
            self._consumer_error(error)
            return None
        partition, offset = position(message)
        self._tracker.started(partition, offset)
        try:
            record = CODEC.decode(message.value())
        except OrchestratorError as exc:
            record = exc
        if not isinstance(record, ExecuteTask) or record.task_type != self.task_type:
            # Kafka-native workers dead-letter these; the bridge skips them.
            self._log.warning("not a task command; skipped", partition=partition, offset=offset)
            self._tracker.done(partition, offset)
            return None
        return _Command(record, partition, offset)

    def _expire(self, now: float) -> None:
        limit = now - self._config.lease_s
        with self._lock:
            expired = [key for key, lease in self._leases.items() if lease.leased_at < limit]
            for key in expired:
                self._retire(key)
        for workflow_id, task_id in expired:
            self._log.warning(
                "lease released: no update within the lease time",
                workflow_id=workflow_id,
                task_id=task_id,
                lease_s=self._config.lease_s,
            )

    def _settle_done(self) -> None:
        while self._done:
            partition, offset = self._done.popleft()
            self._tracker.done(partition, offset)

    def _forget(self, numbers: list[int]) -> None:
        """Forget buffered commands of ``numbers``: their new owner gets them (uncommitted).

        Leases on them stay, so their updates are still published directly.
        """
        with self._lock:
            self._buffer = deque(c for c in self._buffer if c.partition not in numbers)

    def close(self) -> None:
        """Stop consuming, commit what is done, and leave the group."""
        self._stop.set()
        self._thread.join(timeout=15)
