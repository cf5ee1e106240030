"""Integration fixtures: topics per test, processors as real child processes or threads."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from orchestrator.api.app import ApiConfig, create_app
from orchestrator.api.auth import AuthConfig
from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.log.kafka import admin_client
from orchestrator.log.topics import ensure_topics
from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually


@pytest.fixture
def topics(settings: Settings) -> Settings:
    """``settings`` with its topics created."""
    ensure_topics(admin_client(settings), settings)
    return settings


@pytest.fixture
def client(topics: Settings) -> Iterator[Client]:
    """A client of the test's topics."""
    instance = Client(topics)
    yield instance
    instance.close()


class ProcessorProcesses:
    """Starts ``orchestrator processor`` child processes and kills what is left at the end."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, instance_id: str, state_dir: Path | None = None) -> subprocess.Popen[bytes]:
        """Run a processor instance with its own (or the shared) state directory."""
        env = {
            **os.environ,
            "ORCH_BOOTSTRAP": self.settings.bootstrap,
            "ORCH_TOPIC_PREFIX": self.settings.topic_prefix,
            "ORCH_PARTITIONS": str(self.settings.partitions),
            "ORCH_STATE_DIR": str(state_dir or self.settings.state_dir),
            "ORCH_LOG_FORMAT": "json",
        }
        log = open(self.logs / f"processor-{instance_id}.log", "ab")  # noqa: SIM115
        child = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "processor", "--instance-id", instance_id],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.children.append(child)
        return child

    def kill(self, child: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` and reap the child."""
        if child.poll() is None:
            os.killpg(child.pid, sig)
        child.wait(30)

    def close(self) -> None:
        """Kill every child still running."""
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(10)


@pytest.fixture
def processor_processes(topics: Settings, tmp_path: Path) -> Iterator[ProcessorProcesses]:
    """A factory of processor child processes for the test's topics."""
    logs = tmp_path / "logs"
    logs.mkdir()
    factory = ProcessorProcesses(topics, logs)
    yield factory
    factory.close()


@pytest.fixture
def processor_thread(topics: Settings) -> Iterator[Processor]:
    """A processor running in a thread of the test process, ready (partitions assigned)."""
    processor = Processor(topics, "thread")
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    thread.start()
    assert processor.ready.wait(30), "the processor got no partitions within 30 s"
    yield processor
    stop.set()
    thread.join(30)


class ApiServer:
    """``orchestrator api``'s application served by uvicorn in a thread, on a free port."""

    def __init__(self, settings: Settings, config: ApiConfig, config_file: Path | None) -> None:
        self.app = create_app(settings, config, config_file=config_file)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()  # connections queue until uvicorn accepts: no refused /readyz
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, ready_timeout: float = 60.0) -> ApiServer:
        """Start serving and wait until the read model has caught up."""
        self._thread.start()
        assert_eventually(
            lambda: httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200,
            timeout=ready_timeout,
        )
        return self

    def stop(self) -> None:
        """Stop serving (the lifespan closes the read model)."""
        self._server.should_exit = True
        self._thread.join(15)
        self._socket.close()


@pytest.fixture
def api_factory(topics: Settings, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Start API servers on the test's topics: ``api_factory(config_file, auth=AuthConfig())``."""
    servers: list[ApiServer] = []

    def start(config_file: Path | None = None, **overrides: Any) -> ApiServer:
        overrides.setdefault("auth", AuthConfig(enabled=False))
        overrides.setdefault("read_dir", tmp_path / f"read-model-{len(servers)}")
        server = ApiServer(topics, ApiConfig(**overrides), config_file)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def api_server(api_factory: Callable[..., ApiServer]) -> str:
    """The base URL of an API with authentication off (development mode)."""
    return api_factory().url
