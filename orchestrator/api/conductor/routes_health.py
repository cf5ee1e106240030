"""Conductor's ``GET /health``: whether the read model caught up and the broker answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.api.deps import ServiceDep

Json = Any
router = APIRouter(tags=["conductor system"])


@router.get("/health")
def health(service: ServiceDep) -> JSONResponse:
    """Conductor's HealthCheckStatus; 503 when a check fails."""
    projector = service.projector
    results = [
        _result("readModel", projector.ready, {"eventsFolded": projector.events_folded}),
        _result("broker", projector.broker_reachable(), {}),
    ]
    healthy = all(result["healthy"] for result in results)
    body = {"healthResults": results, "suppressedHealthResults": [], "healthy": healthy}
    return JSONResponse(body, status_code=200 if healthy else 503)


def _result(name: str, healthy: bool, details: dict[str, Json]) -> dict[str, Json]:
    return {"name": name, "healthy": healthy, "details": details}
