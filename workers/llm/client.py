"""One POST to an OpenAI-compatible API, with its failures sorted into retryable and terminal.

408, 429 and 5xx are :class:`LlmUnavailableError` (retryable, so the TaskDef's backoff
applies); any other non-2xx status is :class:`LlmRejectedError` (terminal). No answer within the
task's ``timeoutSeconds`` is :class:`LlmTimeoutError`. The API key travels only in the
``Authorization`` header and is masked in anything that makes its way into a failure reason.
"""

from __future__ import annotations

import asyncio
import http
import weakref
from typing import Any

import httpx
import orjson

from orchestrator.errors import TerminalError
from workers.http_task import display_uri
from workers.llm.config import Endpoint
from workers.llm.errors import (
    LlmConnectionError,
    LlmRejectedError,
    LlmReplyError,
    LlmTimeoutError,
    LlmUnavailableError,
)

__all__ = ["LlmClient", "scrub"]

Json = Any
REASON_CHARS = 300
_RETRYABLE_4XX = frozenset({408, 429})


class LlmClient:
    """Posts JSON to an endpoint, with one ``httpx.AsyncClient`` per event loop that calls it.

    A client's connections belong to the loop that opened them (see :class:`HttpTask`), so
    clients are kept per loop and dropped with it.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()

    async def post(
        self, endpoint: Endpoint, path: str, body: dict[str, Json], timeout_s: float, task: str
    ) -> dict[str, Json]:
        """POST ``body`` to ``path`` of ``endpoint``; the decoded JSON object of a 2xx answer."""
        url = endpoint.url(path)
        shown = display_uri(url)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client().post(
                    url, content=orjson.dumps(body), headers=headers, timeout=timeout_s
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LlmTimeoutError(
                f"{task}: POST {shown} timed out after {timeout_s:g} s (timeoutSeconds)"
            ) from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise TerminalError(f"{task}: cannot POST {shown}: {exc}") from exc
        except httpx.HTTPError as exc:
            reason = scrub(str(exc) or type(exc).__name__, endpoint)
            raise LlmConnectionError(f"{task}: cannot reach {shown}: {reason}") from exc
        return _decoded(response, shown, endpoint, task)

    def close(self) -> None:
        """Forget every client; their loops have ended, so their sockets close with them."""
        self._clients.clear()

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = httpx.AsyncClient(transport=self._transport)
            self._clients[loop] = client
        return client


def scrub(text: str, endpoint: Endpoint) -> str:
    """``text`` with the endpoint's API key, should a provider echo it, replaced by ``***``."""
    if endpoint.api_key is None:
        return text
    key = endpoint.api_key.get_secret_value()
    return text.replace(key, "***") if key else text


def _decoded(
    response: httpx.Response, shown: str, endpoint: Endpoint, task: str
) -> dict[str, Json]:
    status = response.status_code
    if not 200 <= status < 300:
        reason = f"{task}: HTTP {status} {_phrase(status)} from {shown}: {_error_text(response)}"
        reason = scrub(reason, endpoint)
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            raise LlmRejectedError(reason)
        raise LlmUnavailableError(reason)
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise LlmReplyError(
            f"{task}: {shown} answered {status} with a body that is not JSON"
        ) from exc
    if not isinstance(body, dict):
        raise LlmReplyError(f"{task}: {shown} answered with JSON that is not an object")
    return body


def _error_text(response: httpx.Response) -> str:
    """OpenAI's ``error.message`` when the body has one, else the start of the body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        if isinstance(message, str) and message:
            return message[:REASON_CHARS]
    return response.text[:REASON_CHARS] or "(empty body)"


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
