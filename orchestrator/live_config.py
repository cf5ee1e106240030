"""Live configuration: a TOML file of settings that may change while a process runs.

```toml
log_level = "INFO"

[worker]
concurrency = 8                 # max handler calls in flight per worker process
rate_limit_per_second = 0       # task starts per second for every task type; 0 = unlimited

[worker.rate_limits]            # per task type overrides
send_email = 5

[api]
rate_limit_per_second = 0       # requests per second per client; 0 = unlimited
max_body_bytes = 1048576

[auth]
enabled = true
hs256_secret = "..."
```

Every key is optional and an unknown key is an error, so a typo never passes silently.
:class:`ConfigWatcher` polls the file and hands each new valid version to a callback; a version
that does not parse or validate is logged and the previous one stays in force.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from orchestrator.config import Settings
from orchestrator.dsl.names import check_task_type
from orchestrator.errors import ConfigFileError
from orchestrator.telemetry import configure_logging, get_logger

__all__ = [
    "ApiSection",
    "AuthSection",
    "ConfigWatcher",
    "LiveConfig",
    "WorkerSection",
    "load_live_config",
    "log_level_follower",
    "parse_live_config",
    "watching",
]

DEFAULT_INTERVAL_S = 1.0

_log = get_logger("orchestrator.config")

Rate = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    """Frozen, strict (TOML has types: ``"8"`` is not 8), and no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class WorkerSection(_Section):
    """``[worker]``: how much a worker process runs at once, and how fast it starts tasks."""

    concurrency: int | None = Field(
        None, ge=1, le=100_000, description="handler calls in flight; unset: the --concurrency flag"
    )
    rate_limit_per_second: Rate = Field(0.0, description="task starts per second; 0: unlimited")
    rate_limits: dict[str, Rate] = Field(
        default_factory=dict, description="per task type overrides of rate_limit_per_second"
    )

    @field_validator("rate_limits")
    @classmethod
    def _task_types(cls, value: dict[str, float]) -> dict[str, float]:
        for task_type in value:
            check_task_type(task_type)
        return value

    def rate_for(self, task_type: str) -> float:
        """Task starts per second allowed for ``task_type`` (0: unlimited)."""
        return self.rate_limits.get(task_type, self.rate_limit_per_second)


class ApiSection(_Section):
    """``[api]``: limits of the HTTP API."""

    rate_limit_per_second: Rate = Field(0.0, description="per client; 0: unlimited")
    max_body_bytes: int = Field(1_048_576, ge=1, description="largest request body accepted")


class AuthSection(_Section):
    """``[auth]``: how the HTTP API verifies bearer tokens (mirrors the API's auth settings)."""

    enabled: bool = True
    hs256_secret: SecretStr | None = None
    jwks_file: Annotated[Path, Field(strict=False)] | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    leeway_s: int = Field(30, ge=0)


class LiveConfig(_Section):
    """The whole file. Sections left out take their defaults; ``auth`` is None when absent."""

    log_level: str | None = Field(None, description="unset: the --log-level flag")
    worker: WorkerSection = WorkerSection.model_validate({})
    api: ApiSection = ApiSection.model_validate({})
    auth: AuthSection | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING or ERROR")
        return level


def parse_live_config(data: bytes | str, source: str) -> LiveConfig:
    """Parse and validate a configuration file's contents; ``source`` names it in errors.

    Raises :class:`ConfigFileError` naming every problem: a TOML syntax error with its line and
    column, an unknown key or a wrong type with the key's dotted path.
    """
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"not valid TOML: {exc}", path=source) from exc
    try:
        return LiveConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ConfigFileError(problems, path=source) from exc


def load_live_config(path: Path) -> LiveConfig:
    """Read and validate the configuration file at ``path`` (see :func:`parse_live_config`)."""
    return parse_live_config(_read(path), str(path))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc


def _describe(error: Any) -> str:
    """One validation problem as ``dotted.key: what is wrong`` (never echoing the value)."""
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind in _EXPECTED:
        # The value itself may be a secret: name its type only.
        return f"{where}: expected {_EXPECTED[kind]}, got {_toml_type(error['input'])}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "string_type": "a string",
    "dict_type": "a table",
    "model_type": "a table",
    "path_type": "a path (a string)",
}


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names |= {dict: "a table", list: "an array"}
    return names.get(type(value), type(value).__name__)


class ConfigWatcher:
    """Watches a configuration file and calls ``on_change`` with every new valid version.

    :meth:`start` loads the file (raising :class:`ConfigFileError` if it is bad, so a process
    never starts on a broken configuration), calls ``on_change`` with it, then polls the file
    every ``interval_s`` seconds on a daemon thread. The file is small, so each poll reads it
    and compares a digest of its content: an edit within the file system's time stamp
    resolution, or one that keeps the size, is still seen. A new content, once two polls in a
    row read it (so a half-written file is never applied), is parsed and
    validated; a bad version is logged at error level and the previous configuration stays in
    force until a later good version replaces it. Callbacks run on the watcher's thread,
    outside any lock; one that raises is logged and the watcher goes on.
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[LiveConfig], None],
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self._on_change = on_change
        self._lock = threading.Lock()
        self._current: LiveConfig | None = None
        self._seen: bytes | None = None  # digest of the content last looked at, good or bad
        self._settling: bytes | None = None  # digest read by the last poll, not yet applied
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-watcher", daemon=True)

    @property
    def current(self) -> LiveConfig:
        """The configuration in force: the last valid version of the file."""
        with self._lock:
            if self._current is None:
                raise RuntimeError("the configuration watcher has not started")
            return self._current

    def start(self) -> None:
        """Load the file, apply it, and start watching it."""
        data = _read(self.path)
        config = parse_live_config(data, str(self.path))
        with self._lock:
            self._current, self._seen = config, _digest(data)
        self._notify(config)
        self._thread.start()
        _log.info("watching configuration file", path=str(self.path), interval_s=self.interval_s)

    def stop(self) -> None:
        """Stop watching; waits for a callback in progress to return."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> ConfigWatcher:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._check()
            except Exception:  # noqa: BLE001 - the watcher outlives any one bad poll
                _log.exception("configuration check failed", path=str(self.path))

    def _check(self) -> None:
        """Apply the file if its content changed to a valid new configuration."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            if self._seen != _MISSING:
                self._seen = _MISSING
                _log.error(
                    "configuration file unreadable; the previous configuration stays in force",
                    path=str(self.path),
                    error=exc.strerror or str(exc),
                )
            return
        digest = _digest(data)
        if digest == self._seen:
            return
        if digest != self._settling:
            # A content is applied once two polls in a row read it: a file caught half
            # written (truncated, then filled) is never taken for a configuration.
            self._settling = digest
            return
        self._seen = digest
        try:
            config = parse_live_config(data, str(self.path))
        except ConfigFileError as exc:
            _log.error(
                "configuration file rejected; the previous configuration stays in force",
                path=str(self.path),
                error=exc.detail,
            )
            return
        with self._lock:
            changed, self._current = config != self._current, config
        if changed:
            _log.info("configuration file applied", path=str(self.path))
            self._notify(config)

    def _notify(self, config: LiveConfig) -> None:
        try:
            self._on_change(config)
        except Exception:  # noqa: BLE001 - a faulty callback must not end the watching
            _log.exception("applying the configuration failed", path=str(self.path))


_MISSING = b"<missing>"


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def log_level_follower(settings: Settings) -> Callable[[LiveConfig], None]:
    """A callback that re-configures logging when the file's ``log_level`` changes.

    A file without ``log_level`` means the level of ``settings`` (flag or environment).
    """
    applied = [settings.log_level.upper()]

    def follow(config: LiveConfig) -> None:
        level = config.log_level or settings.log_level.upper()
        if level != applied[0]:
            configure_logging(settings.log_format, level)
            applied[0] = level
            _log.info("log level changed", new_level=level)

    return follow


@contextlib.contextmanager
def watching(
    path: Path | None, settings: Settings, *appliers: Callable[[LiveConfig], None]
) -> Iterator[ConfigWatcher | None]:
    """Watch ``path`` (if given) while the block runs: the log level, then each applier.

    Raises :class:`ConfigFileError` before the block when the file is bad at the start.
    """
    if path is None:
        yield None
        return
    callbacks = (log_level_follower(settings), *appliers)

    def apply(config: LiveConfig) -> None:
        for callback in callbacks:
            try:
                callback(config)
            except Exception:  # noqa: BLE001 - one failing part must not stop the others
                _log.exception("applying the configuration failed", path=str(path))

    with ConfigWatcher(path, apply) as watcher:
        yield watcher
