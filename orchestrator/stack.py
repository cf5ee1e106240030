"""A local stack: the embedded broker, a processor and workers as child processes.

Backs ``orchestrator dev`` and ``orchestrator demo``. Every child runs in its own process
group and is stopped with SIGTERM (then SIGKILL) when the stack closes, so nothing outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from orchestrator.config import Settings
from orchestrator.log.broker import EmbeddedBroker
from orchestrator.log.kafka import admin_client
from orchestrator.log.topics import ensure_topics
from orchestrator.telemetry import get_logger

log = get_logger(__name__)
STOP_GRACE_S = 15.0


class LocalStack:
    """Broker (unless ``settings.bootstrap`` names one), topics, a processor, workers."""

    def __init__(self, settings: Settings, *, embedded_broker: bool = True) -> None:
        self._broker = EmbeddedBroker() if embedded_broker else None
        self.settings = settings
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> Self:
        if self._broker is not None:
            self._broker.start()
            self.settings = self.settings.model_copy(update={"bootstrap": self._broker.bootstrap})
        ensure_topics(admin_client(self.settings), self.settings)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def environment(self) -> dict[str, str]:
        """The environment that points a child process at this stack."""
        return {
            **os.environ,
            "ORCH_BOOTSTRAP": self.settings.bootstrap,
            "ORCH_TOPIC_PREFIX": self.settings.topic_prefix,
            "ORCH_PARTITIONS": str(self.settings.partitions),
            "ORCH_STATE_DIR": str(self.settings.state_dir),
            "ORCH_LOG_FORMAT": self.settings.log_format,
            "ORCH_LOG_LEVEL": self.settings.log_level,
        }

    def spawn(
        self,
        name: str,
        *args: str,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Run ``orchestrator <args>`` as a child of the stack, with ``env`` added to its own."""
        output = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
        child = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args],
            env={**self.environment(), **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
        )
        if output is not None:
            output.close()
        self._children.append((name, child))
        log.debug("started child", name=name, pid=child.pid)
        return child

    def close(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL) and the broker."""
        for name, child in reversed(self._children):
            _stop(name, child)
        self._children.clear()
        if self._broker is not None:
            self._broker.stop()


def _stop(name: str, child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("child did not stop in time; killing it", name=name, pid=child.pid)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
