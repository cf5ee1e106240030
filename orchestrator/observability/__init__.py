"""Traces, metrics and health endpoints of the processor and the workers.

Header scheme and span names: :mod:`.runs` and :mod:`.processor`; metric names:
:mod:`.instruments`; the Prometheus text for an HTTP route: :func:`.metrics.render_prometheus`.
A process calls :func:`configure_observability` once at start-up. Submodules are imported on
use, so a client that only propagates trace context never loads the OpenTelemetry SDK.
"""

from __future__ import annotations

from orchestrator.config import Settings

__all__ = ["configure_observability"]


def configure_observability(settings: Settings, service_name: str) -> None:
    """Set up span export (OTLP/HTTP when configured) and name the service in metrics."""
    from orchestrator.observability.metrics import configure_metrics  # noqa: PLC0415 - see above
    from orchestrator.observability.tracing import configure_tracing  # noqa: PLC0415 - see above

    configure_metrics(service_name)
    configure_tracing(settings, service_name)
