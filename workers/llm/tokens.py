"""Token usage as a metric: ``orch.llm.tokens`` (Prometheus ``orch_llm_tokens_total``).

One counter, labelled by ``model`` and ``kind`` (``prompt`` or ``completion``), on the process's
OpenTelemetry meter; where the observability package is absent, recording does nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

__all__ = ["record_tokens"]

Add = Callable[[int, Mapping[str, str]], None]


@functools.cache
def _counter() -> Add | None:
    try:
        from orchestrator.observability.metrics import meter  # noqa: PLC0415 - optional
    except ImportError:
        return None
    counter = meter().create_counter(
        "orch.llm.tokens", unit="{token}", description="LLM tokens used, by model and kind"
    )
    return counter.add


def record_tokens(model: str, usage: Mapping[str, int]) -> None:
    """Count the prompt and completion tokens of one call (``usage`` as the tasks output it)."""
    add = _counter()
    if add is None:
        return
    for kind, key in (("prompt", "promptTokens"), ("completion", "completionTokens")):
        if usage.get(key):
            add(usage[key], {"model": model, "kind": kind})
