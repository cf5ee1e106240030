"""One task type's consumer: fetch task commands, run the handler, publish results, commit.

The consumer thread owns the Kafka consumer and the offset tracker. Handlers run elsewhere
(:mod:`orchestrator.worker_executors`) and publish their own results, so a result leaves as soon
as its handler returns; they report back only through a queue the consumer thread drains:
``finished`` (the handler returned) and ``acked`` / ``lost`` (the result's delivery report).

An offset counts as done only when its result (or dead letter) is acknowledged, and only the
contiguous prefix of done offsets is committed, so a crash re-delivers anything unfinished.

Each handler call is a :class:`~orchestrator.observability.worker.TaskAttempt`: a span under
the command's ``traceparent``, whose own ``traceparent`` the result carries back.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from confluent_kafka import Consumer, KafkaError, Message

from orchestrator.config import Settings
from orchestrator.engine.records import ExecuteTask, TaskResult
from orchestrator.errors import OrchestratorError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_consumer
from orchestrator.observability import instruments
from orchestrator.observability.health import serve_health
from orchestrator.observability.propagation import header
from orchestrator.observability.worker import TaskAttempt
from orchestrator.telemetry import get_logger
from orchestrator.worker_executors import HandlerLoop, HandlerThreads, Slots
from orchestrator.worker_group import GroupMember, position
from orchestrator.worker_handlers import Handler, picked_up
from orchestrator.worker_offsets import OffsetTracker
from orchestrator.worker_publisher import Publisher

__all__ = ["Shared", "TaskConsumer", "health_port"]

MAX_BATCH = 500
IDLE_WAIT_S = 0.1  # longest blocking wait for records or slots; bounds reaction to stop
COMMIT_INTERVAL_S = 0.05
FLUSH_AT_LEAST_S = 2.0  # results of handlers that finish at the very end still get acknowledged
PREFETCH_MESSAGES = 1000

_FINISHED, _ACKED, _LOST = "finished", "acked", "lost"
_Report = tuple[str, int, int, KafkaError | None]
Trace = bytes | str | None  # a ``traceparent`` header value

_log = get_logger("orchestrator.worker")


@dataclass(frozen=True, slots=True)
class Shared:
    """What every task type's consumer of one running worker shares."""

    settings: Settings
    publisher: Publisher
    slots: Slots
    threads: HandlerThreads | None
    loop: HandlerLoop | None
    worker_id: str


class TaskConsumer(GroupMember):
    """Consumes ``tasks.<type>`` in the group ``<prefix>worker.<type>`` and runs one handler."""

    def __init__(self, shared: Shared, handler: Handler) -> None:
        self._shared = shared
        self._handler = handler
        self._publisher = shared.publisher
        self._producer = shared.publisher.producer
        self.topic = shared.publisher.topics.tasks(handler.task_type)
        self.group_id = f"{shared.settings.topic_prefix}worker.{handler.task_type}"
        self._reports: queue.SimpleQueue[_Report] = queue.SimpleQueue()
        self._tracker = OffsetTracker()
        self._consumer: Consumer = make_consumer(
            shared.settings,
            self.group_id,
            on_commit=self._on_commit,
            **{"queued.min.messages": PREFETCH_MESSAGES},
        )
        self._running = 0  # handlers submitted and not finished; consumer thread only
        self._held: Message | None = None  # a record fetched while no slot was free
        self._paused = False
        self._closed = False  # set once the grace period ends: late results are dropped
        self._next_commit = 0.0
        self._log = _log.bind(task_type=handler.task_type, group=self.group_id)
        self.subscribed = False  # read by the readiness check of the health port
        self._metrics = instruments.worker()

    def run(self, halt: threading.Event, grace_period: float) -> None:
        """Consume until ``halt`` is set, then let handlers finish, commit, and leave the group."""
        try:
            self._subscribe()
            self.subscribed = True
            self._log.info("consuming", topic=self.topic)
            while not halt.is_set():
                self._step()
            self._finish(time.monotonic() + grace_period)
        finally:
            self._closed = True
            self.subscribed = False
            self._leave()
            self._log.info("consumer closed")

    # Fetching ---------------------------------------------------------------------------------

    def _step(self) -> None:
        """Settle reports, then hand out as many records as there are free slots."""
        self._settle()
        reserved = self._shared.slots.reserve(MAX_BATCH, IDLE_WAIT_S)
        if reserved == 0:
            # Full: pause fetching but keep polling, so rebalances and max.poll.interval.ms
            # are served while long handlers run. Paused partitions deliver nothing.
            self._pause(True)
            self._dispatch(self._consumer.consume(1, 0), reserved=0)
            return
        self._pause(False)
        batch = [] if self._held is None else [self._held]
        self._held = None
        if reserved > len(batch):
            batch.extend(self._consumer.consume(reserved - len(batch), 0))
        if batch:
            self._dispatch(batch, reserved=reserved)
        else:
            self._shared.slots.release(reserved)
            self._wait_for_record()

    def _wait_for_record(self) -> None:
        """Block briefly for the next record without holding slots other task types may need."""
        batch = self._consumer.consume(1, IDLE_WAIT_S)
        if not batch:
            return
        if self._shared.slots.reserve(1, 0):
            self._dispatch(batch, reserved=1)
        else:
            # The slots went to other task types meanwhile: keep this record, fetch no more.
            self._held = batch[0]
            self._pause(True)

    def _dispatch(self, messages: list[Message], *, reserved: int) -> None:
        used = 0
        for message in messages:
            error = message.error()
            if error is not None:
                self._consumer_error(error)
                continue
            partition, offset = position(message)
            self._tracker.started(partition, offset)
            task = self._decode(message)
            if task is not None:
                self._submit(task, partition, offset, header(message.headers()))
                used += 1
        # A record that arrives while paused (a race with a fresh assignment) runs beyond the
        # bound rather than being dropped.
        self._shared.slots.release(reserved - used)

    def _dead_letter(self, message: Message, reason: str) -> None:
        partition, offset = position(message)
        self._publisher.dead_letter(message, reason, partial(self._delivered, partition, offset))

    def _decode(self, message: Message) -> ExecuteTask | None:
        """The task command in ``message``; None after dead-lettering what is not one."""
        try:
            record = CODEC.decode(message.value())
        except OrchestratorError as exc:
            self._dead_letter(message, str(exc))
            return None
        if not isinstance(record, ExecuteTask) or record.task_type != self._handler.task_type:
            kind = getattr(record, "task_type", type(record).__name__)
            self._dead_letter(message, f"a {kind} record does not belong on {self.topic}")
            return None
        return record

    # Running handlers (jobs run on handler threads or the handler loop) ------------------------

    def _submit(self, task: ExecuteTask, partition: int, offset: int, traceparent: Trace) -> None:
        self._running += 1
        if task.ack:  # the task has a pollTimeoutSeconds: say it was picked up
            ack = picked_up(task, self._shared.worker_id)
            self._publisher.result(ack, _ignore_delivery, traceparent=traceparent)
        if self._handler.is_async:
            assert self._shared.loop is not None
            job = partial(self._job_async, task, partition, offset, traceparent)
            self._shared.loop.submit(job)
        else:
            assert self._shared.threads is not None
            self._shared.threads.submit(partial(self._job, task, partition, offset, traceparent))

    def _job(self, task: ExecuteTask, partition: int, offset: int, traceparent: Trace) -> None:
        try:
            with TaskAttempt(task, traceparent) as attempt:
                result = attempt.finish(self._handler.run(task, self._shared.worker_id))
            self._publish(result, partition, offset, attempt.traceparent)
        finally:
            self._finished(partition, offset)

    async def _job_async(
        self, task: ExecuteTask, partition: int, offset: int, traceparent: Trace
    ) -> None:
        try:
            with TaskAttempt(task, traceparent) as attempt:
                result = await self._handler.run_async(task, self._shared.worker_id)
                attempt.finish(result)
            self._publish(result, partition, offset, attempt.traceparent)
        finally:
            self._finished(partition, offset)

    def _finished(self, partition: int, offset: int) -> None:
        self._shared.slots.release(1)
        self._reports.put((_FINISHED, partition, offset, None))

    def _publish(
        self, result: TaskResult, partition: int, offset: int, traceparent: Trace = None
    ) -> None:
        """Publish ``result``; its acknowledgement marks the offset done."""
        if self._closed:
            self._log.info(
                "result of an abandoned task dropped; the task will be re-delivered",
                workflow_id=result.workflow_id,
                task_id=result.task_id,
            )
            return
        delivered = partial(self._delivered, partition, offset)
        self._publisher.result(result, delivered, traceparent=traceparent)

    def _delivered(
        self, partition: int, offset: int, error: KafkaError | None, _message: Message
    ) -> None:
        self._reports.put((_ACKED if error is None else _LOST, partition, offset, error))

    # Offsets ----------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Serve delivery reports, apply every queued report, and commit now and then."""
        self._producer.poll(0)
        self._apply_reports()
        self._metrics.flush()
        now = time.monotonic()
        if now >= self._next_commit:
            self._commit(self._tracker.committable(), asynchronous=True)
            self._next_commit = now + COMMIT_INTERVAL_S

    def _apply_reports(self, wait: float = 0.0) -> None:
        try:
            report = self._reports.get(timeout=wait) if wait > 0 else self._reports.get_nowait()
            while True:
                kind, partition, offset, error = report
                if kind == _FINISHED:
                    self._running -= 1
                elif kind == _ACKED:
                    self._tracker.done(partition, offset)
                else:
                    # librdkafka already retried for message.timeout.ms: leave the offset
                    # uncommitted so the record is re-delivered after a restart or rebalance.
                    self._log.error(
                        "delivery failed", partition=partition, offset=offset, error=str(error)
                    )
                report = self._reports.get_nowait()
        except queue.Empty:
            return

    # Rebalances and shutdown (the rest is GroupMember's) ------------------------------------

    def _forget(self, numbers: list[int]) -> None:
        if self._held is not None and self._held.partition() in numbers:
            self._held = None

    def _settle_done(self) -> None:
        self._producer.poll(0)
        self._apply_reports()

    def _finish(self, deadline: float) -> None:
        """Graceful stop: wait for running handlers until ``deadline``, then commit what is done."""
        while self._running > 0 and (remaining := deadline - time.monotonic()) > 0:
            self._producer.poll(0)
            self._apply_reports(wait=min(remaining, IDLE_WAIT_S))
        if self._running > 0:
            self._log.warning(
                "handing back tasks still running after the grace period", running=self._running
            )
        self._closed = True
        self._producer.flush(max(deadline - time.monotonic(), FLUSH_AT_LEAST_S))
        self._apply_reports()
        self._metrics.flush()
        self._commit(self._tracker.positions(), asynchronous=False)


@contextlib.contextmanager
def health_port(settings: Settings, consumers: Sequence[TaskConsumer]) -> Iterator[None]:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` while the block runs, if configured.

    Ready means the broker answers and every consumer has subscribed to its topic.
    """

    def readiness() -> list[str]:
        return [f"not subscribed to {c.topic} yet" for c in consumers if not c.subscribed]

    server = serve_health(settings, readiness)
    try:
        yield
    finally:
        if server is not None:
            server.close()


def _ignore_delivery(error: KafkaError | None, message: Message) -> None:
    """A pick-up report needs no bookkeeping: the task's final result commits the offset."""
