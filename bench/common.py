"""Shared set-up for the benchmarks: a broker, topics, and percentile helpers."""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Iterator
from uuid import uuid4

from orchestrator.config import Settings
from orchestrator.log.broker import EmbeddedBroker
from orchestrator.log.kafka import admin_client
from orchestrator.log.topics import ensure_topics
from orchestrator.telemetry import configure_logging


@contextlib.contextmanager
def bench_settings(partitions: int = 6, **extra: object) -> Iterator[Settings]:
    """Settings on ORCH_BOOTSTRAP's broker, or on an embedded one started for the run."""
    configure_logging("console", "WARNING")
    external = os.environ.get("ORCH_BOOTSTRAP")
    with contextlib.ExitStack() as stack:
        bootstrap = external or stack.enter_context(EmbeddedBroker()).bootstrap
        settings = Settings(
            bootstrap=bootstrap,
            topic_prefix=f"bench{uuid4().hex[:6]}.",
            partitions=partitions,
            log_level="WARNING",
            **extra,  # type: ignore[arg-type]
        )
        ensure_topics(admin_client(settings), settings)
        yield settings


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``values``."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, int(pct) - 1))]
