"""Metrics: one OpenTelemetry MeterProvider per process, read out in the Prometheus text format.

The provider's only reader is the ``opentelemetry-exporter-prometheus`` PrometheusMetricReader,
registered in a registry of our own (with prometheus_client's process, platform and GC
collectors), so the processor's and worker's metrics port and the HTTP API's ``/metrics``
route render the same numbers with :func:`render_prometheus`. OpenTelemetry names map to
Prometheus ones as the exporter defines: ``orch.tasks.completed`` (a counter) is
``orch_tasks_completed_total``, ``orch.task.latency`` (unit ``s``) is
``orch_task_latency_seconds``.

The provider is created on first use; :func:`configure_metrics` names the service first.
"""

from __future__ import annotations

import threading

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)

__all__ = ["configure_metrics", "meter", "registry", "render_prometheus"]

_SCOPE = "orchestrator"
DEFAULT_SERVICE = "orchestrator"

_lock = threading.Lock()
_service = DEFAULT_SERVICE
_registry: CollectorRegistry | None = None
_meter: Meter | None = None


def configure_metrics(service_name: str) -> None:
    """Name the service in ``target_info``; only effective before the first metric is made."""
    global _service  # noqa: PLW0603 - the process's one provider, set up once
    with _lock:
        _service = service_name


def meter() -> Meter:
    """The meter every orchestrator instrument is created on."""
    if _meter is None:
        _create()
    assert _meter is not None
    return _meter


def registry() -> CollectorRegistry:
    """The prometheus_client registry holding this process's metrics."""
    if _registry is None:
        _create()
    assert _registry is not None
    return _registry


def render_prometheus() -> tuple[bytes, str]:
    """Every metric of this process in the Prometheus text format: (body, content type)."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def _create() -> None:
    global _registry, _meter
    with _lock:
        if _meter is not None:
            return
        target = CollectorRegistry(auto_describe=True)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            target.register(collector)
        reader = PrometheusMetricReader(scope_info_enabled=False, registry=target)
        provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": _service}),
        )
        _registry, _meter = target, provider.get_meter(_SCOPE)
