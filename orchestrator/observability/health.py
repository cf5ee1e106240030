"""The health and metrics port of a processor or worker: ``/healthz``, ``/readyz``, ``/metrics``.

A stdlib HTTP server in a daemon thread, on ``settings.metrics_host`` (loopback by default)
and ``settings.metrics_port`` (0: no server). ``/healthz`` answers 200 while the process
runs. ``/readyz`` answers 200 when the broker answers a metadata request and the process's
own check finds nothing missing, else 503 with a JSON body listing why. ``/metrics`` is
:func:`~orchestrator.observability.metrics.render_prometheus`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from orchestrator.config import Settings
from orchestrator.errors import BrokerUnreachableError, OrchestratorError
from orchestrator.log.kafka import check_reachable
from orchestrator.observability.metrics import render_prometheus
from orchestrator.telemetry import get_logger

__all__ = ["BrokerProbe", "HealthServer", "Readiness", "serve_health"]

#: What keeps the process from being ready; an empty list means ready.
Readiness = Callable[[], list[str]]

PROBE_TIMEOUT_S = 2.0
PROBE_CACHE_S = 2.0

_log = get_logger(__name__)


class BrokerProbe:
    """Whether the broker answers, asked at most every ``PROBE_CACHE_S`` seconds."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._checked = -PROBE_CACHE_S
        self._problem: str | None = None

    def problem(self) -> str | None:
        """None if the broker answered lately, else why not."""
        with self._lock:
            if time.monotonic() - self._checked >= PROBE_CACHE_S:
                try:
                    check_reachable(self._settings, timeout=PROBE_TIMEOUT_S)
                    self._problem = None
                except BrokerUnreachableError as exc:
                    self._problem = str(exc)
                self._checked = time.monotonic()
            return self._problem


class HealthServer:
    """Serves the three routes until :meth:`close`."""

    def __init__(self, settings: Settings, readiness: Readiness) -> None:
        probe = BrokerProbe(settings)

        def ready() -> list[str]:
            problem = probe.problem()
            return ([problem] if problem else []) + readiness()

        address = (settings.metrics_host, settings.metrics_port)
        try:
            self._server = ThreadingHTTPServer(address, _handler(ready))
        except OSError as exc:
            raise OrchestratorError(
                f"cannot serve health and metrics on {address[0]}:{address[1]}: {exc}"
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Start serving in a daemon thread."""
        self._thread.start()
        _log.info("health and metrics port open", port=self.port)
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


def serve_health(settings: Settings, readiness: Readiness) -> HealthServer | None:
    """A started :class:`HealthServer`, or None when ``settings.metrics_port`` is 0."""
    if settings.metrics_port == 0:
        return None
    return HealthServer(settings, readiness).start()


def _handler(ready: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b'{"status":"ok"}', "application/json")
            elif path == "/readyz":
                reasons = ready()
                body = orjson.dumps({"ready": not reasons, "reasons": reasons})
                self._send(503 if reasons else 200, body, "application/json")
            elif path == "/metrics":
                self._send(200, *render_prometheus())
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Requests are not logged: probes come every few seconds."""

    return Handler
