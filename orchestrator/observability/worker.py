"""A worker's side of tracing and metrics: one span and one measurement per task attempt.

The task command's ``traceparent`` header names the processor's span of the attempt. When
tracing records, the handler runs in a child span of it (``execute <task type>``, kind
CONSUMER), current while the handler runs, and the result carries that span's
``traceparent``. When it does not, nothing touches OpenTelemetry's context: the result carries
the command's ``traceparent`` on unchanged, so the trace still continues downstream, and its ids
are bound for logging (:func:`~orchestrator.telemetry.bind_trace_ids`). Either way the lines
logged meanwhile carry ``trace_id`` and ``span_id``.
"""

from __future__ import annotations

import time
from contextvars import Token
from types import TracebackType

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, Span, SpanKind, Status, StatusCode

from orchestrator.engine.records import ExecuteTask, ResultStatus, TaskResult
from orchestrator.observability import instruments, tracing
from orchestrator.observability.propagation import (
    TRACEPARENT_LENGTH,
    format_traceparent,
    parse_traceparent,
)
from orchestrator.telemetry import bind_trace_ids, reset_trace_ids

__all__ = ["TaskAttempt"]

_FAILED = (ResultStatus.FAILED, ResultStatus.FAILED_WITH_TERMINAL_ERROR)


class TaskAttempt:
    """Span and metrics of one handler call: use as a context manager, :meth:`finish` inside."""

    def __init__(self, task: ExecuteTask, traceparent: bytes | str | None) -> None:
        self._task = task
        self._incoming = traceparent
        self._span: Span = INVALID_SPAN
        self._token: object | None = None
        self._ids: Token[tuple[str, str] | None] | None = None
        self._began = 0.0
        #: The ``traceparent`` the attempt's result carries (None: the command carried none).
        self.traceparent: str | None = None

    def __enter__(self) -> TaskAttempt:
        if tracing.recording():
            self._span = self._start(parse_traceparent(self._incoming))
            self._token = context.attach(trace.set_span_in_context(self._span))
            self.traceparent = format_traceparent(self._span.get_span_context())
        elif (incoming := _well_formed(self._incoming)) is not None:
            self.traceparent = incoming
            self._ids = bind_trace_ids(incoming[3:35], incoming[36:52])
        self._began = time.perf_counter()
        return self

    def _start(self, parent: trace.SpanContext | None) -> Span:
        task = self._task
        return tracing.tracer().start_span(
            f"execute {task.task_type}",
            context=trace.set_span_in_context(NonRecordingSpan(parent)) if parent else Context(),
            kind=SpanKind.CONSUMER,
            attributes={
                "workflow.id": task.workflow_id,
                "workflow.name": task.workflow_name,
                "task.id": task.task_id,
                "task.type": task.task_type,
                "task.ref_name": task.ref_name,
                "task.attempt": task.attempt,
            },
        )

    def finish(self, result: TaskResult) -> TaskResult:
        """Record the handler's outcome and duration; return ``result``."""
        seconds = time.perf_counter() - self._began
        outcome = result.status.lower()
        instruments.worker().measure(self._task.task_type, outcome, seconds)
        if self._span.is_recording():
            self._span.set_attribute("task.outcome", outcome)
            if result.status in _FAILED:
                self._span.set_status(Status(StatusCode.ERROR, result.reason))
        return result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()
        if self._ids is not None:
            reset_trace_ids(self._ids)


def _well_formed(value: bytes | str | None) -> str | None:
    """``value`` as text if it has the shape of a ``traceparent`` (a cheap check, no parsing)."""
    if value is None or len(value) != TRACEPARENT_LENGTH:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return text if text[2] == text[35] == text[52] == "-" else None
