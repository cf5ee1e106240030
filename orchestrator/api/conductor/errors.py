"""Errors on Conductor's paths in its shape: ``status``, ``message``, ``instance``, ``retryable``.

The application's own handlers decide the status of every error (one decision, in
``orchestrator.api.app``); for ``/api/`` and ``/health`` this module re-dresses their answer,
keeping the status and the headers that matter (``WWW-Authenticate``, ``Retry-After``).
Validation errors also list ``validationErrors`` (path and message, never the input itself).
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

Json = Any
Handler = Callable[[Request, Exception], Any]
PREFIXES = ("/api/", "/health")
KEPT_HEADERS = ("www-authenticate", "retry-after")
INSTANCE = socket.gethostname()


def is_conductor_path(path: str) -> bool:
    """Whether ``path`` belongs to the Conductor-compatible API."""
    return path.startswith(PREFIXES)


def error_body(
    status: int, message: str, validation_errors: list[dict[str, str]] | None = None
) -> dict[str, Json]:
    """Conductor's ErrorResponse."""
    body: dict[str, Json] = {
        "status": status,
        "message": message,
        "instance": INSTANCE,
        "retryable": status >= 500 or status == 429,
    }
    if validation_errors:
        body["validationErrors"] = validation_errors
    return body


def error_response(status: int, message: str) -> JSONResponse:
    """A Conductor error answer."""
    return JSONResponse(error_body(status, message), status_code=status)


def reshape(response: Response) -> Response:
    """An error answer with ``{"detail": ...}`` re-dressed as Conductor's ErrorResponse."""
    try:
        detail = orjson.loads(bytes(response.body)).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    status = response.status_code
    headers = {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}
    if isinstance(detail, list):
        found = [_validation_error(item) for item in detail if isinstance(item, dict)]
        message = "; ".join(f"{e['path']}: {e['message']}" for e in found) or "invalid request"
        return JSONResponse(error_body(status, message, found), status, headers=headers)
    message = str(detail) if detail is not None else f"HTTP {status}"
    return JSONResponse(error_body(status, message), status, headers=headers)


def _validation_error(item: dict[str, Json]) -> dict[str, str]:
    location = [str(part) for part in item.get("loc", ())]
    return {"path": ".".join(location), "message": str(item.get("msg", ""))}


def install_error_shapes(app: FastAPI) -> None:
    """Wrap every exception handler ``app`` has so Conductor's paths answer in its shape.

    Call after the application's own handlers are registered: a handler added later is not
    wrapped.
    """
    for kind, handler in list(app.exception_handlers.items()):
        app.exception_handlers[kind] = _conductor_shaped(handler)


def _conductor_shaped(handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Any:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        if is_conductor_path(request.url.path) and isinstance(response, Response):
            return reshape(response)
        return response

    return handle
