"""A tiny publication endpoint: it records each article POSTed to it and answers with its URL.

``POST <url>/articles`` with ``{"title", "body", "topic"}`` (all non-empty strings) answers
201 ``{"url": "<url>/articles/<slug of the title>"}``; another body answers 400, another path
404, and neither is recorded. Every accepted POST is recorded, with its ``Idempotency-Key``
header, so a test sees a duplicate delivery instead of having it hidden. It stands in for a CMS
in the example and its tests, on 127.0.0.1 only.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import orjson

__all__ = ["Publication", "PublicationReceiver", "publication", "slug"]

Json = Any
ARTICLES = "/articles"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Publication:
    """One accepted POST: the article, its URL and the request's Idempotency-Key header."""

    title: str
    body: str
    topic: str
    url: str
    idempotency_key: str | None


def slug(title: str) -> str:
    """The URL path segment of a title: lower-case words joined by dashes."""
    return _NOT_SLUG.sub("-", title.lower()).strip("-") or "article"


class PublicationReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that records the articles posted to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._publications: list[Publication] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="publication-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def publish_url(self) -> str:
        """Where articles are POSTed."""
        return self.url + ARTICLES

    @property
    def publications(self) -> list[Publication]:
        """The articles accepted so far, in arrival order."""
        with self._lock:
            return list(self._publications)

    def start(self) -> str:
        """Serve in a background thread; return :attr:`publish_url`."""
        self._thread.start()
        return self.publish_url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def record(self, accepted: Publication) -> None:
        """Add ``accepted`` to :attr:`publications`."""
        with self._lock:
            self._publications.append(accepted)


def publication(article: Json, publish_url: str, idempotency_key: str | None) -> Publication:
    """The publication of a POSTed ``article``; ValueError if it is not a title, body and topic."""
    fields = ("title", "body", "topic")
    if not isinstance(article, dict) or not all(
        isinstance(article.get(key), str) and article[key].strip() for key in fields
    ):
        raise ValueError("expected a JSON object with non-empty title, body and topic")
    return Publication(
        title=article["title"],
        body=article["body"],
        topic=article["topic"],
        url=f"{publish_url}/{slug(article['title'])}",
        idempotency_key=idempotency_key,
    )


def _handler_for(receiver: PublicationReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            """Accept an article POSTed to /articles (201), or say why not (400, 404)."""
            if self.path.rstrip("/") != ARTICLES:
                self._answer(404, {"error": f"no such resource {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                article = orjson.loads(self.rfile.read(length))
                accepted = publication(
                    article, receiver.publish_url, self.headers.get("Idempotency-Key")
                )
            except ValueError as exc:  # orjson's decode error is one too
                self._answer(400, {"error": str(exc)})
                return
            receiver.record(accepted)
            self._answer(201, {"url": accepted.url})

        def _answer(self, status: int, body: Json) -> None:
            payload = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the example's output clean: no access log on stderr."""

    return Handler
