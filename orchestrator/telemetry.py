"""Logging setup: structlog writing one line per event to stderr, as console text or JSON.

Loggers are resolved lazily on every call, so a module may create its logger at import time and
still follow a later :func:`configure_logging` (and ``structlog.testing.capture_logs()``).
Every line logged while an OpenTelemetry span is current carries its ``trace_id`` and
``span_id`` (hex, as in ``traceparent``), so logs and traces join on them; where no span is
recorded but a trace context is known (a worker running a task with tracing off), the ids
bound with :func:`bind_trace_ids` stand in.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, Literal, cast

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

__all__ = [
    "LogFormat",
    "add_trace_context",
    "bind_trace_ids",
    "configure_logging",
    "get_logger",
    "reset_trace_ids",
]

LogFormat = Literal["console", "json"]
LoggerFactory = Callable[..., Any]

_trace_ids: ContextVar[tuple[str, str] | None] = ContextVar("orchestrator_trace_ids", default=None)


def configure_logging(fmt: LogFormat = "console", level: str = "INFO") -> None:
    """Send structlog events at ``level`` or above to stderr, rendered as ``fmt``.

    JSON goes through orjson when it is installed. Calling this again replaces the previous
    configuration; it never stacks outputs.
    """
    renderer, logger_factory = _console_output() if fmt == "console" else _json_output()
    structlog.configure(
        processors=[*_shared_processors(fmt), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        logger_factory=logger_factory,
        # Lazy resolution keeps module-level loggers in step with reconfiguration and
        # with structlog.testing.capture_logs().
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger that adds ``logger_name=name`` to every event it emits."""
    return cast(FilteringBoundLogger, structlog.get_logger(logger_name=name))


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    return number


def bind_trace_ids(trace_id: str, span_id: str) -> Token[tuple[str, str] | None]:
    """Log ``trace_id`` and ``span_id`` (hex) while no span is current, until the reset."""
    return _trace_ids.set((trace_id, span_id))


def reset_trace_ids(token: Token[tuple[str, str] | None]) -> None:
    """Undo the :func:`bind_trace_ids` that returned ``token``."""
    _trace_ids.reset(token)


def add_trace_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """A structlog processor adding the current span's ``trace_id`` and ``span_id``, if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", f"{context.trace_id:032x}")
        event.setdefault("span_id", f"{context.span_id:016x}")
    elif (bound := _trace_ids.get()) is not None:
        event.setdefault("trace_id", bound[0])
        event.setdefault("span_id", bound[1])
    return event


def _shared_processors(fmt: LogFormat) -> list[Processor]:
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if fmt == "json":
        # Locals stay out of logs: they may hold credentials or whole payloads.
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        processors.append(structlog.processors.ExceptionRenderer(transformer))
    return processors


def _console_output() -> tuple[Processor, LoggerFactory]:
    renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    return renderer, structlog.WriteLoggerFactory(file=sys.stderr)


def _json_output() -> tuple[Processor, LoggerFactory]:
    buffer = getattr(sys.stderr, "buffer", None)
    if _orjson_dumps is None or buffer is None:
        return structlog.processors.JSONRenderer(default=str), structlog.WriteLoggerFactory(
            file=sys.stderr
        )
    return structlog.processors.JSONRenderer(
        serializer=_orjson_dumps
    ), structlog.BytesLoggerFactory(file=buffer)


def _load_orjson_dumps() -> Callable[..., bytes] | None:
    try:
        import orjson  # noqa: PLC0415 - optional: JSON logs fall back to the standard library
    except ImportError:
        return None

    def dumps(obj: Any, **_: Any) -> bytes:
        return orjson.dumps(obj, default=str)

    return dumps


_orjson_dumps = _load_orjson_dumps()
