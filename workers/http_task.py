"""Conductor's HTTP system task: one HTTP call per attempt, its response as the task output.

The request comes from ``input["http_request"]`` or, when that key is absent, from the top level
of the input (Conductor accepts both). A 2xx response completes the task; any other status fails
the attempt, for good (:class:`HttpRejectedError`) on a 4xx other than 408 and 429. Input that
cannot make a request (no uri, unknown method, bad timeout) is a :class:`TerminalError` naming
the field.
"""

from __future__ import annotations

import asyncio
import http
import urllib.parse
import weakref
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from orchestrator.errors import OrchestratorError, TerminalError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_MS",
    "DEFAULT_READ_TIMEOUT_MS",
    "HttpConnectionError",
    "HttpRejectedError",
    "HttpRequest",
    "HttpStatusError",
    "HttpTask",
    "display_uri",
    "request_fields",
    "response_output",
    "status_error",
]

Json = Any

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
JSON_MEDIA = "application/json"
FORM_MEDIA = "application/x-www-form-urlencoded"
# Conductor defaults to 100 ms and 150 ms, too short for most real services; longer limits only
# let through what Conductor would have failed, and the task's own timeout still bounds a call.
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
DEFAULT_READ_TIMEOUT_MS = 60_000
REASON_BODY_CHARS = 200
_RETRYABLE_4XX = frozenset({408, 429})


class HttpStatusError(OrchestratorError):
    """The server answered with a non-2xx status that a retry may fix (3xx, 408, 429, 5xx)."""


class HttpRejectedError(TerminalError):
    """The server refused the request with a 4xx status that no retry fixes."""


class HttpConnectionError(OrchestratorError):
    """No response arrived: the connection failed or a timeout passed."""


def request_fields(task_input: Json, key: str, task: str) -> dict[str, Json]:
    """The request object of a task: ``task_input[key]`` if present, else the input itself."""
    if not isinstance(task_input, dict):
        raise TerminalError(f"{task} task input must be an object, got {_kind(task_input)}")
    fields = task_input.get(key)
    if fields is None:
        return task_input
    if not isinstance(fields, dict):
        raise TerminalError(f"{task} task input '{key}' must be an object, got {_kind(fields)}")
    return fields


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """One HTTP call as the task input describes it; timeouts in ms, ``None`` for no limit."""

    uri: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: Json = None
    accept: str = JSON_MEDIA
    content_type: str = JSON_MEDIA
    connect_timeout_ms: int | None = DEFAULT_CONNECT_TIMEOUT_MS
    read_timeout_ms: int | None = DEFAULT_READ_TIMEOUT_MS

    @classmethod
    def from_input(cls, task_input: Json) -> HttpRequest:
        """Read the request from ``http_request`` or the top level; TerminalError if invalid."""
        fields = request_fields(task_input, "http_request", "HTTP")
        return cls(
            uri=_uri(fields.get("uri")),
            method=_method(fields.get("method")),
            headers=_headers(fields.get("headers")),
            body=fields.get("body"),
            accept=_text(fields, "accept", JSON_MEDIA),
            content_type=_text(fields, "contentType", JSON_MEDIA),
            connect_timeout_ms=_timeout(fields, "connectionTimeOut", DEFAULT_CONNECT_TIMEOUT_MS),
            read_timeout_ms=_timeout(fields, "readTimeOut", DEFAULT_READ_TIMEOUT_MS),
        )

    def timeout(self) -> httpx.Timeout:
        """httpx's timeouts: connect (and pool) from connectionTimeOut, the rest readTimeOut."""
        connect, read = _seconds(self.connect_timeout_ms), _seconds(self.read_timeout_ms)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def request_headers(self) -> list[tuple[str, str]]:
        """The given headers, plus Accept and (with a body) Content-Type unless given."""
        names = {name.lower() for name, _ in self.headers}
        extra = [("Accept", self.accept)] if "accept" not in names else []
        if self.body is not None and "content-type" not in names:
            extra.append(("Content-Type", self.content_type))
        return [*self.headers, *extra]

    def content(self) -> bytes | None:
        """The body as bytes: a string as is, a form for form content, JSON otherwise."""
        if self.body is None:
            return None
        if isinstance(self.body, str):
            return self.body.encode()
        if _media(self.content_type) == FORM_MEDIA and isinstance(self.body, dict):
            return urllib.parse.urlencode(self.body, doseq=True).encode()
        try:
            return orjson.dumps(self.body)
        except orjson.JSONEncodeError as exc:
            raise TerminalError(f"HTTP task input 'body' cannot be encoded as JSON: {exc}") from exc


class HttpTask:
    """The HTTP task's handler, with one ``httpx.AsyncClient`` per event loop that calls it.

    A client's connections belong to the loop that opened them, and a worker that runs twice
    gets a new loop each time, so clients are kept per loop and dropped with it.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()

    async def call(self, task_input: Json) -> dict[str, Json]:
        """Make the call; return ``{"response": ...}``; raise for a non-2xx status or no answer."""
        request = HttpRequest.from_input(task_input)
        response = await self._send(request)
        error = status_error(request, response)
        if error is not None:
            raise error
        return {"response": response_output(response)}

    def close(self) -> None:
        """Forget every client; their loops have ended, so their sockets close with them."""
        self._clients.clear()

    async def _send(self, request: HttpRequest) -> httpx.Response:
        shown = display_uri(request.uri)
        try:
            return await self._client().request(
                request.method,
                request.uri,
                headers=request.request_headers(),
                content=request.content(),
                timeout=request.timeout(),
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise TerminalError(f"HTTP task cannot send {request.method} {shown}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise HttpConnectionError(_transport_reason(request, shown, exc)) from exc

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = httpx.AsyncClient(follow_redirects=True, transport=self._transport)
            self._clients[loop] = client
        return client


def response_output(response: httpx.Response) -> dict[str, Json]:
    """Conductor's response object: statusCode, reasonPhrase, headers (name: [values]), body."""
    headers: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1")
        name = spelling.setdefault(name.lower(), name)
        headers.setdefault(name, []).append(raw_value.decode("latin-1"))
    return {
        "statusCode": response.status_code,
        "reasonPhrase": _reason_phrase(response),
        "headers": headers,
        "body": _body(response),
    }


def status_error(request: HttpRequest, response: httpx.Response) -> Exception | None:
    """The failure a non-2xx response means, or None for 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    snippet = response.text[:REASON_BODY_CHARS] or "(empty body)"
    phrase, shown = _reason_phrase(response), display_uri(request.uri)
    reason = f"HTTP {status} {phrase} from {shown}: {snippet}"
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return HttpRejectedError(reason)
    return HttpStatusError(reason)


def display_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``, for failure reasons that are kept forever."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


# Input fields ----------------------------------------------------------------------------------


def _uri(value: Json) -> str:
    if value is None or value == "":
        raise TerminalError("HTTP task input 'uri' is missing")
    if not isinstance(value, str):
        raise TerminalError(f"HTTP task input 'uri' must be a string, got {_kind(value)}")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise TerminalError(
            f"HTTP task input 'uri' must be an absolute http(s) URL, got {display_uri(value)!r}"
        )
    return value


def _method(value: Json) -> str:
    if value is None or value == "":
        return "GET"
    method = value.upper() if isinstance(value, str) else value
    if method not in METHODS:
        raise TerminalError(
            f"HTTP task input 'method' must be one of {', '.join(METHODS)}, got {value!r}"
        )
    return str(method)


def _headers(value: Json) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise TerminalError(f"HTTP task input 'headers' must be an object, got {_kind(value)}")
    pairs: list[tuple[str, str]] = []
    for name, item in value.items():
        values = item if isinstance(item, list) else [item]
        for one in values:
            if isinstance(one, dict | list):
                raise TerminalError(f"HTTP task input 'headers.{name}' must be a scalar")
            if one is not None:
                pairs.append((name, one if isinstance(one, str) else orjson.dumps(one).decode()))
    return tuple(pairs)


def _text(fields: dict[str, Json], key: str, default: str) -> str:
    value = fields.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise TerminalError(f"HTTP task input '{key}' must be a string, got {_kind(value)}")
    return value


def _timeout(fields: dict[str, Json], key: str, default: int) -> int | None:
    """A timeout in ms; 0 means no limit, as in Conductor."""
    value = fields.get(key)
    if value is None or value == "":
        return default
    milliseconds = _whole_number(value)
    if milliseconds is None or milliseconds < 0:
        raise TerminalError(
            f"HTTP task input '{key}' must be a whole number of milliseconds >= 0, got {value!r}"
        )
    return milliseconds or None


def _whole_number(value: Json) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    return None


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


def _kind(value: Json) -> str:
    return "null" if value is None else type(value).__name__


# Responses and failures ------------------------------------------------------------------------


def _media(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _body(response: httpx.Response) -> Json:
    """The body parsed as JSON when the response says it is JSON, else as text; None if empty."""
    if not response.content:
        return None
    media = _media(response.headers.get("content-type", ""))
    if media == JSON_MEDIA or media.endswith("+json"):
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            pass
    return response.text


def _reason_phrase(response: httpx.Response) -> str:
    if response.reason_phrase:
        return response.reason_phrase
    try:
        return http.HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def _transport_reason(request: HttpRequest, shown: str, exc: httpx.HTTPError) -> str:
    connect, read = request.connect_timeout_ms, request.read_timeout_ms
    limits = f"connectionTimeOut={_limit(connect)}, readTimeOut={_limit(read)}"
    match exc:
        case httpx.ConnectTimeout():
            return f"connecting to {shown} timed out after {connect} ms (connectionTimeOut)"
        case httpx.ReadTimeout():
            return f"{request.method} {shown} sent no response within {read} ms (readTimeOut)"
        case httpx.TimeoutException():
            return f"{request.method} {shown} timed out ({type(exc).__name__}; {limits})"
        case httpx.ConnectError():
            return f"cannot connect to {shown}: {str(exc) or type(exc).__name__} ({limits})"
        case _:
            return f"{request.method} {shown} failed: {type(exc).__name__}: {exc} ({limits})"


def _limit(milliseconds: int | None) -> str:
    return "none" if milliseconds is None else f"{milliseconds} ms"
