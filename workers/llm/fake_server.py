"""A deterministic fake of OpenAI's API on loopback, for tests and example apps.

```python
with FakeLLM([{"match": "capital", "reply": "Paris"}]) as llm:
    llm.base_url           # http://127.0.0.1:<port>/v1, for OPENAI_BASE_URL or a task's baseUrl
    ...                    # call it
    llm.requests           # every request it received: method, path, headers, body, and
                           # when it arrived and was answered (wall-clock seconds)
```

or ``python -m workers.llm.fake_server --port 8099 --script script.json`` (prints
``OPENAI_BASE_URL=...`` and serves until Ctrl-C or SIGTERM). It serves ``POST
/v1/chat/completions``, ``POST /v1/completions``, ``POST /v1/embeddings`` and ``GET /v1/models``;
the script (see :mod:`workers.llm.fake_script`) decides replies, failures and delays.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from workers.llm.fake_script import (
    Endpoint,
    Rule,
    Script,
    count_tokens,
    embed_text,
    request_text,
)

__all__ = ["FakeLLM", "FakeRequest", "main"]

Json = Any
CREATED = 1_700_000_000  # a fixed timestamp: replies are the same on every run
_PATHS: dict[tuple[str, str], Endpoint] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/completions"): "completions",
    ("POST", "/v1/embeddings"): "embeddings",
    ("GET", "/v1/models"): "models",
}


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request the fake received (headers with lower-case names).

    ``received_at`` is when its first line arrived and ``answered_at`` when the reply, built
    and delayed, started being sent (``None`` until then); both are ``time.time()`` seconds, so
    they compare with timestamps taken in other processes on the machine.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Json
    received_at: float = 0.0
    answered_at: float | None = None


class FakeLLM:
    """The fake server: ``start()`` returns the base URL, ``stop()`` ends it; a context manager."""

    def __init__(self, script: Json = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._script = Script.of(script)
        self._used: dict[int, int] = {}
        self._requests: list[FakeRequest] = []
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port/v1`` of the running server."""
        if self._server is None:
            raise RuntimeError("the fake LLM is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[FakeRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def load(self, script: Json) -> None:
        """Replace the script and forget how often each rule was used (requests are kept)."""
        with self._lock:
            self._script = Script.of(script)
            self._used.clear()

    def start(self) -> str:
        """Listen and serve on a thread; return :attr:`base_url`."""
        server = _Server(self._address, _handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-llm", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close the socket (replies still being delayed are dropped)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> FakeLLM:
        """Start serving; the block gets the running fake."""
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving."""
        self.stop()

    def answer(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Json,
        *,
        received_at: float | None = None,
    ) -> tuple[int, Json, float]:
        """Record the request; return (status, JSON body, seconds to wait before sending)."""
        request = FakeRequest(method, path, headers, body, received_at or time.time())
        return self._answer(request)[1:]

    def _answer(self, request: FakeRequest) -> tuple[int, int, Json, float]:
        """Record ``request``; its index in :attr:`requests`, then what :meth:`answer` returns."""
        method, path, body = request.method, request.path, request.body
        endpoint = _PATHS.get((method, path.rstrip("/")))
        with self._lock:
            index = len(self._requests)
            self._requests.append(request)
            if endpoint is None:
                return index, 404, _error(f"no route {method} {path}", "not_found"), 0.0
            if endpoint != "models" and not isinstance(body, dict):
                error = _error("the body must be a JSON object", "invalid_request_error")
                return index, 400, error, 0.0
            rule, script = self._rule(endpoint, body), self._script
        delay = rule.delay_ms / 1000
        if rule.status != 200:
            error = _error(rule.error or f"scripted status {rule.status}", "fake")
            return index, rule.status, error, delay
        return index, 200, _reply(endpoint, body, rule, script), delay

    def _answered(self, index: int) -> None:
        """Stamp request ``index`` as answered (its reply is being sent) now."""
        answered_at = time.time()
        with self._lock:
            self._requests[index] = replace(self._requests[index], answered_at=answered_at)

    def _rule(self, endpoint: Endpoint, body: Json) -> Rule:
        for number, rule in enumerate(self._script.rules):
            used = self._used.get(number, 0)
            if (rule.times is None or used < rule.times) and rule.applies(endpoint, body):
                self._used[number] = used + 1
                return rule
        return self._script.default


def _reply(endpoint: Endpoint, body: dict[str, Json], rule: Rule, script: Script) -> Json:
    match endpoint:
        case "chat":
            return _chat(body, rule)
        case "completions":
            return _completion(body, rule)
        case "embeddings":
            return _embeddings(body, script)
        case "models":
            data = [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
                for m in script.models
            ]
            return {"object": "list", "data": data}


def _chat(body: dict[str, Json], rule: Rule) -> Json:
    reply = rule.message(request_text("chat", body))
    content, finish = _limited(reply.content, body, rule.finish_reason)
    calls: list[dict[str, Json]] = [
        {
            "id": c.id or f"call_{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments_text()},
        }
        for i, c in enumerate(reply.tool_calls, start=1)
    ]
    message: dict[str, Json] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
        finish = rule.finish_reason or "tool_calls"
    completion = " ".join([content or "", *(c["function"]["arguments"] for c in calls)])
    prompt = request_text("chat", body, "any")
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": body.get("model", "fake-chat"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(prompt, completion),
    }


def _completion(body: dict[str, Json], rule: Rule) -> Json:
    prompt = request_text("completions", body)
    text, finish = _limited(rule.message(prompt).content, body, rule.finish_reason)
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": CREATED,
        "model": body.get("model", "fake-chat"),
        "choices": [{"index": 0, "text": text or "", "finish_reason": finish}],
        "usage": _usage(prompt, text or ""),
    }


def _embeddings(body: dict[str, Json], script: Script) -> Json:
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else [t for t in raw or [] if isinstance(t, str)]
    dimensions = body.get("dimensions") or script.dimensions
    data = [
        {"object": "embedding", "index": i, "embedding": embed_text(text, dimensions)}
        for i, text in enumerate(texts)
    ]
    tokens = sum(count_tokens(text) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "fake-embedding"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _limited(
    content: str | None, body: dict[str, Json], finish: str | None
) -> tuple[str | None, str]:
    """Apply ``stop`` and ``max_tokens`` the way a model would: cut, and say why."""
    reason = finish or "stop"
    if content is None:
        return None, reason
    stops = body.get("stop")
    for stop in [stops] if isinstance(stops, str) else stops or []:
        if isinstance(stop, str) and stop and stop in content:
            content = content[: content.index(stop)]
    limit = body.get("max_tokens")
    if isinstance(limit, int) and count_tokens(content) > limit:
        content, reason = " ".join(content.split()[:limit]), finish or "length"
    return content, reason


def _usage(prompt: str, completion: str) -> dict[str, int]:
    p, c = count_tokens(prompt), count_tokens(completion)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _error(message: str, kind: str) -> Json:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hung up while a reply was delayed."""


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: with Nagle's algorithm the body would wait for
        # the client's delayed ACK of the headers (40 ms on Linux loopback).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            """Answer from the script."""
            self._serve()

        def do_POST(self) -> None:
            """Answer from the script."""
            self._serve()

        def parse_request(self) -> bool:
            """Note when the request line arrived, then parse it."""
            self.received_at = time.time()
            return super().parse_request()

        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw.decode(errors="replace")
            request = FakeRequest(self.command, self.path, headers, body, self.received_at)
            index, status, reply, delay = fake._answer(request)
            if delay:
                time.sleep(delay)
            payload = orjson.dumps(reply)
            # Stamped before sending, so a client that has the reply also sees the stamp.
            fake._answered(index)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: ``requests`` is the record."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    """``python -m workers.llm.fake_server [--host H] [--port P] [--script FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m workers.llm.fake_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--script", type=Path, help="a JSON script (rules; see fake_script)")
    args = parser.parse_args(argv)
    script = orjson.loads(args.script.read_bytes()) if args.script else None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with FakeLLM(script, host=args.host, port=args.port) as fake:
        sys.stdout.write(f"OPENAI_BASE_URL={fake.base_url}\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
