"""A Netflix Conductor-compatible REST API under ``/api`` (and ``GET /health``).

Existing Conductor clients (the SDKs' metadata, workflow and task clients, scripts using the
REST API) work unchanged against ``orchestrator api``: the routes translate Conductor's
requests into this engine's request records and its folded state into Conductor's JSON.
Conductor workers poll for tasks over HTTP; the API takes them from Kafka for them
(:mod:`orchestrator.api.conductor.polling`).
"""

from __future__ import annotations

from fastapi import FastAPI

from orchestrator.api.conductor import (
    routes_health,
    routes_metadata,
    routes_tasks,
    routes_workflow,
)
from orchestrator.api.conductor.errors import install_error_shapes

__all__ = ["install"]
ROUTERS = (routes_metadata, routes_workflow, routes_tasks, routes_health)


def install(app: FastAPI) -> None:
    """Add the Conductor routes to ``app`` and answer their errors in Conductor's shape.

    Call after the application's own exception handlers are registered: they decide each
    error's status, and this wraps them.
    """
    for module in ROUTERS:
        app.include_router(module.router)
    install_error_shapes(app)
