"""Health, readiness, the read model's status, metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from orchestrator.api.deps import PrincipalDep, ServiceDep
from orchestrator.observability.metrics import render_prometheus

Json = Any
router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready, with the reason"}})
def readyz(service: ServiceDep) -> JSONResponse:
    """Ready when the broker answers and the read model has caught up with every partition."""
    projector = service.projector
    if not projector.ready:
        return JSONResponse(
            {"status": "catching up", "eventsFolded": projector.events_folded}, status_code=503
        )
    if not projector.broker_reachable():
        return JSONResponse({"status": "broker unreachable"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/v1/status")
def status(request: Request, service: ServiceDep) -> dict[str, Json]:
    """Readiness, whether authentication is on, and how far the read model is behind the log."""
    lag = service.projector.lag
    return {
        "ready": service.projector.ready,
        "authEnabled": request.app.state.authenticator.enabled,
        "eventsFolded": service.projector.events_folded,
        "lag": {
            "records": lag.records,
            "partitions": {str(p): n for p, n in sorted(lag.partitions.items())},
            "applyDelayMs": lag.apply_delay_ms,
        },
    }


@router.get("/v1/metrics/summary", tags=["metrics"])
def metrics_summary(service: ServiceDep, principal: PrincipalDep) -> dict[str, Json]:
    """Per workflow and task type: counts, success rate, retries, latency; throughput by minute."""
    names = {d.name for d in service.visible_definitions(principal, None)}
    return service.projector.metrics.summary(None if principal.sees("*") else names)


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus text format: this process's OpenTelemetry metrics (read model lag, folds)."""
    body, content_type = render_prometheus()
    return Response(body, media_type=content_type)
