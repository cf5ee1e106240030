"""The HTTP API application: routes, error mapping, limits, the UI, and their lifecycle.

``create_app`` builds a FastAPI app around a read model (a RocksDB projection of ``events``
under ``read_dir``) and a publisher to ``requests`` and ``definitions``. Errors map to 4xx
with a ``detail`` message; only a broker that does not answer gives a 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.api import (
    conductor,
    routes_human,
    routes_metadata,
    routes_system,
    routes_workflows,
)
from orchestrator.api.auth import AuthConfig, Authenticator
from orchestrator.api.conductor.polling import Bridge
from orchestrator.api.fastpath import StartFastPath
from orchestrator.api.limits import BodyLimit, RateLimit
from orchestrator.api.projector import Projector
from orchestrator.api.readstore import ReadStore
from orchestrator.api.service import Service
from orchestrator.config import Settings
from orchestrator.errors import (
    AuthError,
    BrokerError,
    DefinitionError,
    OrchestratorError,
    RequestConflictError,
    TopicNameError,
    WorkflowNotFoundError,
)
from orchestrator.live_config import ConfigWatcher, LiveConfig, log_level_follower
from orchestrator.telemetry import get_logger

log = get_logger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


class ApiConfig(BaseModel):
    """What the API process needs beyond the shared Settings."""

    model_config = ConfigDict(frozen=True)

    read_dir: Path = Field(Path("state/read-model"), description="the read model's RocksDB")
    max_body_bytes: int = Field(1_048_576, ge=1024)
    rate_limit_per_second: float = Field(0.0, ge=0, description="per caller; 0: unlimited")
    auth: AuthConfig = Field(default_factory=AuthConfig)


class Limits:
    """The limits in force; replaced whole by a configuration reload."""

    def __init__(self, config: ApiConfig) -> None:
        self.max_body_bytes = config.max_body_bytes
        self.rate_limit_per_second = config.rate_limit_per_second


def create_app(
    settings: Settings, config: ApiConfig, *, config_file: Path | None = None
) -> FastAPI:
    """The API application; the read model starts folding when the app starts.

    With ``config_file``, edits to it (log level, auth keys, rate and body limits) apply
    without a restart.
    """
    limits = Limits(config)
    authenticator = Authenticator(config.auth)
    watcher = _watch(config_file, settings, authenticator, limits) if config_file else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = ReadStore(config.read_dir)
        projector = Projector(settings, store)
        projector.start()
        app.state.service = Service(settings, store, projector)
        # HTTP task polling; a task type's consumer starts on its first poll.
        app.state.bridge = Bridge(settings, app.state.service.publisher)
        log.info("api started", read_dir=str(config.read_dir), auth=authenticator.enabled)
        if watcher is not None:
            watcher.start()  # applies the file now: a bad file stops the start
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            app.state.bridge.close()
            app.state.service.close()
            projector.stop()
            store.close()

    app = FastAPI(
        # FastAPI's own telemetry looks providers up on every request; ours is explicit.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="orchestrator",
        version="0.1.0",
        description="Kafka-native workflow engine: start, watch and operate workflows.",
        lifespan=lifespan,
    )
    app.state.authenticator = authenticator
    app.state.limits = limits
    for router in (routes_workflows, routes_metadata, routes_human, routes_system):
        app.include_router(router.router, responses=ERROR_RESPONSES)
    _add_error_handlers(app)
    conductor.install(app)  # after the handlers: it re-dresses their errors on /api
    app.add_middleware(StartFastPath, owner=app)
    app.add_middleware(RateLimit, rate=lambda: app.state.limits.rate_limit_per_second)
    app.add_middleware(BodyLimit, limit=lambda: app.state.limits.max_body_bytes)
    app.mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app


def _watch(
    path: Path, settings: Settings, authenticator: Authenticator, limits: Limits
) -> ConfigWatcher:
    """A watcher applying the file's log level, ``[auth]`` keys and ``[api]`` limits live.

    Auth is applied first: keys that do not load leave the whole previous configuration in
    force (the watcher logs why).
    """
    follow_level = log_level_follower(settings)

    def apply(live: LiveConfig) -> None:
        follow_level(live)
        if live.auth is not None:
            authenticator.reconfigure(AuthConfig(**live.auth.model_dump()))
        limits.max_body_bytes = live.api.max_body_bytes
        limits.rate_limit_per_second = live.api.rate_limit_per_second
        log.info("api configuration applied", path=str(path))

    return ConfigWatcher(path, apply)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid request: the detail names the field or problem"},
    401: {"description": "no bearer token, or one that does not verify"},
    403: {"description": "the token lacks the role or namespace"},
    404: {"description": "not found, or not in the caller's namespaces"},
    409: {"description": "conflicts with the workflow's state or another namespace"},
    413: {"description": "request body over the limit"},
    429: {"description": "over the caller's request rate"},
    503: {"description": "the broker did not acknowledge"},
}
STATUS_BY_ERROR: list[tuple[type[Exception], int]] = [
    (WorkflowNotFoundError, 404),
    (RequestConflictError, 409),
    (DefinitionError, 400),
    (TopicNameError, 400),  # a name from the request that no topic can carry
    (BrokerError, 503),
    (OrchestratorError, 400),
]


def status_of(exc: OrchestratorError) -> int:
    """The HTTP status an error maps to."""
    return next(code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind))


def _add_error_handlers(app: FastAPI) -> None:
    from orchestrator.api.auth import as_http_exception  # noqa: PLC0415 - kept beside its use

    async def on_auth(_: Request, exc: Exception) -> JSONResponse:
        http = as_http_exception(exc)  # type: ignore[arg-type]
        return JSONResponse({"detail": http.detail}, http.status_code, headers=http.headers)

    async def on_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))  # type: ignore[arg-type]

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        # Only where and what: the offending input may be huge or hold secrets.
        found: Any = exc.errors()  # type: ignore[attr-defined]
        errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in found]
        return JSONResponse({"detail": errors}, status_code=400)

    app.add_exception_handler(AuthError, on_auth)
    app.add_exception_handler(OrchestratorError, on_error)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(RequestValidationError, on_validation)
