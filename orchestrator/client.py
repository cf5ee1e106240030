"""The client: register definitions, start and terminate workflows, read their history.

Everything goes through Kafka: requests are produced to ``requests`` keyed (and partitioned)
by workflow id, with a ``traceparent`` header (the active span's context, say an HTTP
request's, or a new trace) so the run they cause joins that trace; status and history are read
back from ``events`` and folded with the engine, so the answer is the log's, not a cache's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from confluent_kafka import TopicPartition

from orchestrator.config import Settings
from orchestrator.dsl.model import TaskDef, WorkflowDef
from orchestrator.engine.evolve import fold
from orchestrator.engine.records import (
    TERMINAL_EVENTS,
    Event,
    Record,
    ResultStatus,
    SignalTask,
    StartWorkflow,
    TaskDefinition,
    TerminateWorkflow,
    WorkflowDefinition,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import WorkflowNotFoundError, WorkflowTimeoutError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import check_reachable, make_consumer, make_producer, produce_and_wait
from orchestrator.log.partitioning import partition_for
from orchestrator.log.reader import read_events
from orchestrator.log.topics import TASKDEF_KEY_PREFIX, Topics
from orchestrator.observability.propagation import (
    TRACEPARENT,
    current_or_new,
    format_traceparent,
)

Json = Any


def _now_ms() -> int:
    return int(time.time() * 1000)


class Client:
    """Talks to a deployment through its topics."""

    def __init__(self, settings: Settings, *, check: bool = True) -> None:
        if check:
            check_reachable(settings)
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self._producer = make_producer(settings)

    def register(self, definitions: Iterable[WorkflowDef]) -> list[str]:
        """Publish definitions to the definitions topic; return their ``name:version`` keys."""
        keys = []
        for definition in definitions:
            record = WorkflowDefinition(
                name=definition.name,
                version=definition.version,
                definition=definition.to_json(),
                registered_at=_now_ms(),
            )
            self._send(self.topics.definitions, definition.key, record, partition=0)
            keys.append(definition.key)
        return keys

    def register_task_definitions(
        self, definitions: Iterable[TaskDef | dict[str, Json]]
    ) -> list[str]:
        """Publish task definitions (Conductor TaskDefs: retries, timeouts); return their names."""
        names = []
        for item in definitions:
            task_def = item if isinstance(item, TaskDef) else TaskDef.model_validate(item)
            record = TaskDefinition(
                name=task_def.name,
                definition=task_def.model_dump(mode="json", exclude_none=True),
                registered_at=_now_ms(),
            )
            self._send(
                self.topics.definitions, TASKDEF_KEY_PREFIX + task_def.name, record, partition=0
            )
            names.append(task_def.name)
        return names

    def request(self, record: Record) -> None:
        """Send a request record (pause, resume, retry, restart, rerun, skip...) to its workflow.

        The record carries the ``traceparent`` of the active span, or of a new trace.
        """
        self._send(
            self.topics.requests,
            record.workflow_id,
            record,
            partition=self.partition(record.workflow_id),
            traceparent=format_traceparent(current_or_new()),
        )

    def start(
        self,
        name: str,
        *,
        version: int | None = None,
        input: Json = None,
        workflow_id: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """Ask for a new run; return its workflow id (a new UUID unless one is given)."""
        workflow_id = workflow_id or str(uuid.uuid4())
        request = StartWorkflow(
            workflow_id=workflow_id,
            name=name,
            version=version,
            input=input if input is not None else {},
            correlation_id=correlation_id,
            requested_at=_now_ms(),
        )
        self.request(request)
        return workflow_id

    def terminate(self, workflow_id: str, reason: str = "") -> None:
        """Ask to terminate a running workflow."""
        request = TerminateWorkflow(workflow_id=workflow_id, reason=reason)
        self.request(request)

    def signal(
        self,
        workflow_id: str,
        task_ref: str,
        *,
        output: Json = None,
        status: ResultStatus = ResultStatus.COMPLETED,
        reason: str | None = None,
    ) -> None:
        """Complete (or fail) a waiting WAIT or HUMAN task, by reference name or task id."""
        request = SignalTask(
            workflow_id=workflow_id,
            task_ref=task_ref,
            status=status,
            output=output if output is not None else {},
            reason=reason,
            requested_at=_now_ms(),
        )
        self.request(request)

    def partition(self, workflow_id: str) -> int:
        """The partition of requests, results and events that holds ``workflow_id``."""
        return partition_for(workflow_id, self.settings.partitions)

    def end_offset(self, workflow_id: str) -> int:
        """The current end of the workflow's events partition (where a follower starts)."""
        consumer = make_consumer(self.settings)
        try:
            tp = TopicPartition(self.topics.events, self.partition(workflow_id))
            _, high = consumer.get_watermark_offsets(tp, timeout=self.settings.connect_timeout_s)
            return int(high)
        finally:
            consumer.close()

    def history(self, workflow_id: str) -> list[Event]:
        """Every event of the workflow, read from the log, in order."""
        return list(self._read(workflow_id, 0, follow=False, timeout=60.0))

    def status(self, workflow_id: str) -> WorkflowState:
        """The workflow's state: the fold of its history."""
        state = fold(self.history(workflow_id))  # type: ignore[arg-type]
        if state is None:
            raise WorkflowNotFoundError(f"no workflow {workflow_id} in {self.topics.events}")
        return state

    def wait(
        self,
        workflow_id: str,
        *,
        timeout: float = 60.0,
        from_offset: int = 0,
        on_event: Callable[[Event], None] | None = None,
    ) -> WorkflowState:
        """Follow the workflow's events until it ends; return its final state."""
        events = []
        for event in self._read(workflow_id, from_offset, follow=True, timeout=timeout):
            events.append(event)
            if on_event is not None:
                on_event(event)
            if isinstance(event, TERMINAL_EVENTS):
                if from_offset > 0:
                    return self.status(workflow_id)
                state = fold(events)  # type: ignore[arg-type]
                assert state is not None
                return state
        raise WorkflowTimeoutError(f"workflow {workflow_id} did not finish within {timeout:g} s")

    def _read(
        self, workflow_id: str, start: int, *, follow: bool, timeout: float
    ) -> Iterator[Event]:
        """Events of one workflow from ``start``; without ``follow``, stop at the current end."""
        return read_events(
            self.settings,
            [self.partition(workflow_id)],
            key=workflow_id,
            start=start,
            follow=follow,
            timeout=timeout,
        )

    def _send(
        self,
        topic: str,
        key: str,
        record: Any,
        partition: int | None = None,
        *,
        traceparent: str | None = None,
    ) -> None:
        headers = {"type": CODEC.type_name(record)}
        if traceparent is not None:
            headers[TRACEPARENT] = traceparent
        produce_and_wait(
            self._producer,
            topic,
            key,
            CODEC.encode(record),
            headers,
            partition=partition,
        )

    def close(self) -> None:
        """Deliver anything pending."""
        self._producer.flush(5)
