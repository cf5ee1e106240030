"""ASGI middleware that refuses oversize bodies and callers over their request rate.

Both answer before the application sees the request: an oversize body never gets parsed and
never reaches the log. Limits are read through callables so a configuration reload changes them
for the next request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException

from orchestrator.api.conductor.errors import error_body, is_conductor_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def respond_json(send: Send, status: int, body: Any, headers: list[Any]) -> None:
    """Send a whole JSON response straight from ASGI middleware."""
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _refuse(
    send: Send, status: int, detail: str, headers: list[Any] | None = None, *, path: str = ""
) -> None:
    """Answer ``status`` with ``detail``, in Conductor's error shape on its paths."""
    shaped = error_body(status, detail) if is_conductor_path(path) else {"detail": detail}
    await respond_json(send, status, shaped, headers or [])


class _TooLargeError(HTTPException):
    """A streamed body passed the limit.

    An HTTPException, because FastAPI's body reader re-raises those (and turns any other
    exception into a 400): the exception middleware answers it with a 413.
    """


class BodyLimit:
    """Refuse request bodies over ``limit()`` bytes with 413, by header or while streaming."""

    def __init__(self, app: App, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on unless its body is too large."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _refuse(
                    send, 413, f"request body over the limit of {limit} bytes", path=scope["path"]
                )
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLargeError(413, f"request body over the limit of {limit} bytes")
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLargeError:
            if not started:
                await _refuse(
                    send, 413, f"request body over the limit of {limit} bytes", path=scope["path"]
                )


LIMITED_PREFIXES = ("/v1/", "/api/")
UNLIMITED_PREFIXES = ("/api/tasks/poll/",)  # pollers come back often by design


class RateLimit:
    """A token bucket per caller (its bearer token, else its address); 429 when empty.

    It covers both APIs (``/v1`` and Conductor's ``/api``) but not task polling, health and the
    UI's static files.
    """

    def __init__(self, app: App, rate: Callable[[], float]) -> None:
        self.app = app
        self.rate = rate
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on while the caller has tokens left."""
        rate = self.rate()
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or rate <= 0
            or not path.startswith(LIMITED_PREFIXES)
            or path.startswith(UNLIMITED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        if not self._take(_caller(scope), rate):
            retry = max(1, round(1 / rate))
            await _refuse(
                send,
                429,
                f"rate limit of {rate:g} requests/s exceeded",
                [(b"retry-after", str(retry).encode())],
                path=path,
            )
            return
        await self.app(scope, receive, send)

    def _take(self, caller: bytes, rate: float) -> bool:
        now, burst = time.monotonic(), max(rate, 1.0)
        with self._lock:
            tokens, last = self._buckets.get(caller, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[caller] = (tokens, now)
                return False
            self._buckets[caller] = (tokens - 1, now)
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            return True


def _caller(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return bytes(value)
    client = scope.get("client") or ("?", 0)
    return str(client[0]).encode()
