"""The trace context of one workflow run, and the ids its task attempts derive from it.

A run's span gets its ids when the run begins (the trace id of the request that started it, a
new random span id) but is emitted only when the run ends. Each task attempt's span id is
derived from the run's span id, the task id and the attempt number, so the processor computes
it again when the attempt ends without having stored it. The context is kept outside the
engine's state: a ``trace/<workflow id>`` row of the partition store, and the ``traceparent``
(and ``parent-span-id``) headers of the run's first event, from which catch-up restores the row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import orjson
from opentelemetry.trace import SpanContext, TraceFlags

from orchestrator.observability.propagation import (
    derived_id,
    format_traceparent,
    parse_traceparent,
)

__all__ = ["RunTrace"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


@dataclass(frozen=True, slots=True)
class RunTrace:
    """Trace id, span id and flags of a run's span, its parent span id, and when it began."""

    trace_id: int
    span_id: int
    flags: int = TraceFlags.SAMPLED
    parent_id: int | None = None
    started_at: int = 0
    header: str = field(init=False, repr=False, compare=False)
    _affixes: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", format_traceparent(self.context))
        object.__setattr__(self, "_affixes", (self.header[:36], self.header[52:]))

    @classmethod
    def begin(cls, request: SpanContext | None, at: int) -> RunTrace:
        """A run asked for by a request whose span context is ``request`` (None: a new trace)."""
        span_id = secrets.randbits(64) or 1
        if request is None:
            return cls(secrets.randbits(128) or 1, span_id, TraceFlags.SAMPLED, None, at)
        return cls(request.trace_id, span_id, int(request.trace_flags), request.span_id, at)

    @classmethod
    def fallback(cls, workflow_id: str) -> RunTrace:
        """A run with no stored context (begun before tracing, say): ids derived from its id."""
        return cls(derived_id(128, "trace", workflow_id), derived_id(64, "run", workflow_id))

    @property
    def context(self) -> SpanContext:
        """The run span's context."""
        return SpanContext(self.trace_id, self.span_id, False, TraceFlags(self.flags))

    @property
    def parent(self) -> SpanContext | None:
        """The context of the span that asked for the run, if known."""
        if self.parent_id is None:
            return None
        return SpanContext(self.trace_id, self.parent_id, True, TraceFlags(self.flags))

    def task_context(self, task_id: str, attempt: int) -> SpanContext:
        """The span context of attempt ``attempt`` of task ``task_id`` in this run."""
        span_id = self._task_span_id(task_id, attempt)
        return SpanContext(self.trace_id, span_id, False, TraceFlags(self.flags))

    def task_header(self, task_id: str, attempt: int) -> str:
        """The ``traceparent`` of a task attempt's span (the parent of the worker's span)."""
        prefix, suffix = self._affixes
        return f"{prefix}{self._task_span_id(task_id, attempt):016x}{suffix}"

    def _task_span_id(self, task_id: str, attempt: int) -> int:
        return derived_id(64, self.header[36:52], task_id, str(attempt))

    @property
    def parent_header(self) -> str | None:
        """The ``parent-span-id`` header value of the run's first event."""
        return None if self.parent_id is None else f"{self.parent_id:016x}"

    def to_bytes(self) -> bytes:
        """The store row's value (JSON)."""
        return orjson.dumps(
            {"traceparent": self.header, "parent": self.parent_header, "at": self.started_at}
        )

    @classmethod
    def from_bytes(cls, workflow_id: str, raw: bytes) -> RunTrace:
        """Inverse of :meth:`to_bytes` (the fallback if the row does not parse)."""
        data = orjson.loads(raw)
        run = cls.from_headers(data.get("traceparent"), data.get("parent"), data.get("at", 0))
        return run if run is not None else cls.fallback(workflow_id)

    @classmethod
    def from_headers(
        cls, traceparent: str | bytes | None, parent: str | bytes | None, started_at: int
    ) -> RunTrace | None:
        """The run whose span is ``traceparent``, child of span ``parent`` (16 hex digits)."""
        context = parse_traceparent(traceparent)
        if context is None:
            return None
        try:
            parent_id = int(parent, 16) if parent else None
        except ValueError:
            parent_id = None
        return cls(
            context.trace_id, context.span_id, int(context.trace_flags), parent_id, started_at
        )
