"""The tracer provider: OTLP/HTTP export when an endpoint is configured, nothing otherwise.

Without ``otlp_endpoint`` no SDK provider is installed: spans are OpenTelemetry's no-op ones
and cost next to nothing, but trace context still travels in record headers, so a process
that does export (a worker, the HTTP API) continues the same trace.

Some spans are emitted after the fact: the processor reports a workflow run or a task attempt
when it ends, but their span ids were already handed out (as the parent in task commands and
child workflows). :class:`PresetIdGenerator` lets :func:`emit_span` give such a span the ids
chosen earlier, through the SDK's public ``IdGenerator`` extension point.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from orchestrator.config import Settings

__all__ = [
    "PresetIdGenerator",
    "configure_tracing",
    "emit_span",
    "make_provider",
    "recording",
    "tracer",
    "use_provider",
]

_SCOPE = "orchestrator"
_MS = 1_000_000  # nanoseconds per millisecond
_preset: ContextVar[SpanContext | None] = ContextVar("orchestrator_preset_ids", default=None)
_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracer: trace.Tracer = trace.NoOpTracer()


class PresetIdGenerator(IdGenerator):
    """Random ids, except inside :func:`emit_span`, which hands out ids chosen beforehand."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        """The preset span id, or a random one."""
        preset = _preset.get()
        return preset.span_id if preset is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        """The preset trace id (for a root span), or a random one."""
        preset = _preset.get()
        return preset.trace_id if preset is not None else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        """Preset trace ids are derived, not random (W3C trace context level 2)."""
        return _preset.get() is None


def make_provider(service_name: str, *processors: SpanProcessor) -> TracerProvider:
    """An SDK provider with our id generator, sending finished spans to ``processors``."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        id_generator=PresetIdGenerator(),
    )
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def configure_tracing(settings: Settings, service_name: str) -> None:
    """Export spans over OTLP/HTTP to ``settings.otlp_endpoint``; without one, trace nothing."""
    if not settings.otlp_endpoint:
        use_provider(None)
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - only when exporting
        OTLPSpanExporter,
    )

    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    exporter = OTLPSpanExporter(endpoint=endpoint)
    provider = make_provider(service_name, BatchSpanProcessor(exporter))
    use_provider(provider)
    trace.set_tracer_provider(provider)


def use_provider(provider: TracerProvider | None) -> None:
    """Send this process's spans to ``provider`` (see :func:`make_provider`); None: no spans."""
    global _provider, _tracer  # noqa: PLW0603 - one provider per process, as OpenTelemetry's
    if provider is not None and not isinstance(provider.id_generator, PresetIdGenerator):
        raise ValueError("the tracer provider must use PresetIdGenerator (see make_provider)")
    with _lock:
        _provider = provider
        _tracer = provider.get_tracer(_SCOPE) if provider is not None else trace.NoOpTracer()


def recording() -> bool:
    """Whether spans are recorded at all; when not, callers skip building them."""
    return _provider is not None


def tracer() -> trace.Tracer:
    """The tracer of this process (a no-op one unless tracing is configured)."""
    return _tracer


def emit_span(
    name: str,
    context: SpanContext,
    parent: SpanContext | None,
    start_ms: int,
    end_ms: int,
    *,
    attributes: Attributes = None,
    links: Sequence[Link] = (),
    error: str | None = None,
) -> None:
    """Record a span that already ended, with the ids in ``context``, under ``parent``."""
    if _provider is None or not context.trace_flags.sampled:
        return
    parent_context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else Context()
    token = _preset.set(context)
    try:
        span = tracer().start_span(
            name,
            context=parent_context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=start_ms * _MS,
        )
    finally:
        _preset.reset(token)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=max(end_ms, start_ms) * _MS)
