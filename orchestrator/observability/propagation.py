"""W3C trace context in Kafka record headers: ``traceparent`` values, read and written.

A ``traceparent`` header holds ``00-<trace id: 32 hex>-<span id: 16 hex>-<flags: 2 hex>``, the
W3C format, so any OpenTelemetry-aware consumer of our topics can continue the trace. Parsing
is hand-written (no regular expression) because the processor reads these in its hot loop; a
malformed value counts as absent, never as an error.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

__all__ = [
    "PARENT_SPAN_ID",
    "TRACEPARENT",
    "TRACEPARENT_LENGTH",
    "current_or_new",
    "derived_id",
    "format_traceparent",
    "header",
    "new_root",
    "parse_traceparent",
]

TRACEPARENT = "traceparent"
#: On the event that begins a run: the span id of the run's parent (the span that asked for it).
PARENT_SPAN_ID = "parent-span-id"

Headers = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]
TRACEPARENT_LENGTH = 55
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def format_traceparent(context: SpanContext) -> str:
    """``context`` as a ``traceparent`` value."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags & 0xFF:02x}"


def parse_traceparent(value: bytes | str | None) -> SpanContext | None:
    """The remote span context in a ``traceparent`` value; None if absent or malformed."""
    if value is None or len(value) != TRACEPARENT_LENGTH:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if text[2] != "-" or text[35] != "-" or text[52] != "-" or text[:2] == "ff":
        return None
    try:
        trace_id, span_id = int(text[3:35], 16), int(text[36:52], 16)
        flags = int(text[53:55], 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))


def header(headers: Headers | None, name: str = TRACEPARENT) -> bytes | str | None:
    """The value of the first header called ``name``, or None."""
    if isinstance(headers, Mapping):
        return headers.get(name)
    if headers:
        for key, value in headers:
            if key == name:
                return value
    return None


def new_root() -> SpanContext:
    """A fresh, sampled span context that starts a new trace."""
    return SpanContext(
        secrets.randbits(128) or 1,
        secrets.randbits(64) or 1,
        is_remote=False,
        trace_flags=_SAMPLED,
    )


def current_or_new() -> SpanContext:
    """The active span's context if there is one (an HTTP request's span, say), else a new root."""
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else new_root()


def derived_id(bits: int, *parts: str) -> int:
    """A non-zero id of ``bits`` (64 or 128) bits, the same for the same ``parts`` everywhere."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big") or 1
