"""The start request's fast path: ``POST /v1/workflows`` answered without FastAPI's layers.

Starting workflows is the one request clients send thousands of times a second. Measured on
two cores, FastAPI's dependency solving, middleware stack and response models cost about four
times the work of the request itself; this ASGI layer does the same checks in the same order
(token, body model, definition and role, produce and await the acknowledgement) and gives the
same answers and errors. Requests with a query string (``?wait=true``) go on to the FastAPI
route, which also documents the operation in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from orchestrator.api.auth import Role, as_http_exception
from orchestrator.api.limits import App, Message, Receive, Scope, Send, respond_json
from orchestrator.api.models import StartRequest
from orchestrator.errors import AuthError, OrchestratorError

PATH = "/v1/workflows"


class StartFastPath:
    """Serves plain ``POST /v1/workflows``; passes everything else to ``app``."""

    def __init__(self, app: App, owner: Any) -> None:
        self.app = app
        self.owner = owner  # the FastAPI application: its state holds the service and auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a start, or pass the request on."""
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        status, body, headers = await self._start(scope, receive)
        await respond_json(send, status, body, headers)

    async def _start(self, scope: Scope, receive: Receive) -> tuple[int, Any, list[Any]]:
        found = dict(scope.get("headers", []))
        state = self.owner.state
        try:
            principal = state.authenticator.authenticate(_text(found.get(b"authorization")))
            principal.require(Role.VIEWER)
            request = StartRequest.model_validate_json(await _body(receive))
            traceparent = _text(found.get(b"traceparent"))
            workflow_id = await state.service.start(principal, request, traceparent)
        except AuthError as exc:
            http = as_http_exception(exc)
            challenge = [(k.encode(), v.encode()) for k, v in (http.headers or {}).items()]
            return http.status_code, {"detail": http.detail}, challenge
        except ValidationError as exc:
            return 400, {"detail": _errors(exc)}, []
        except OrchestratorError as exc:
            from orchestrator.api.app import status_of  # noqa: PLC0415 - app imports this module

            return status_of(exc), {"detail": str(exc)}, []
        return 201, {"workflowId": workflow_id}, []


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and what, located under ``body`` as FastAPI reports it; never the input itself."""
    return [
        {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
