"""Integration fixtures: topics per test, processors as real child processes or threads.

Most tests get topics of their own (``topics``). A module whose tests keep apart by workflow ids
and definition names may share one set of topics, one processor thread and one API between its
tests instead (``module_topics``, ``module_processor``, ``module_api``), or one example
application's stack (``shared_example_stack``, ``next_test``): a processor costs seconds to join
its group and catch up, and a child process more to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest
import uvicorn

from examples.common import Example, ExampleStack
from orchestrator.api.app import ApiConfig, create_app
from orchestrator.api.auth import AuthConfig
from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.log.kafka import admin_client
from orchestrator.log.topics import ensure_topics
from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually

#: The consumer-group session timeout of every client and child process in these tests. tansu
#: answers a JoinGroup only after about half of it (one second at least), and a killed member
#: leaves its group only when it expires, so the default (6 s) adds 3 s to every start of a
#: processor, worker or polling feed and 6 s to every kill. Heartbeats go every third of it.
SESSION_TIMEOUT_MS = 2000


@pytest.fixture(autouse=True)
def _short_session_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``Settings`` of the test, and every child process it starts, uses
    ``SESSION_TIMEOUT_MS`` (autouse fixtures run before ``settings`` reads the environment)."""
    monkeypatch.setenv("ORCH_SESSION_TIMEOUT_MS", str(SESSION_TIMEOUT_MS))


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


@contextlib.contextmanager
def running_processor(settings: Settings) -> Iterator[Processor]:
    """A processor in a thread of the test process, ready (partitions assigned); then stopped."""
    processor = Processor(settings, "thread")
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert processor.ready.wait(30), "the processor got no partitions within 30 s"
        yield processor
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the processor did not stop"


@pytest.fixture
def processor_thread(topics: Settings) -> Iterator[Processor]:
    """A processor running in a thread of the test process, ready (partitions assigned)."""
    with running_processor(topics) as processor:
        yield processor


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


@pytest.fixture(scope="module")
def module_topics(broker_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Topics (created) that every test of the module shares, named like ``settings``' own.

    Module fixtures are set up before the environment fixture above, so the session timeout
    is given here.
    """
    settings = Settings(
        bootstrap=broker_bootstrap,
        topic_prefix=f"m{uuid4().hex[:8]}.",
        state_dir=tmp_path_factory.mktemp("module") / "state",
        partitions=6,
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )
    ensure_topics(admin_client(settings), settings)
    return settings


@pytest.fixture(scope="module")
def module_processor(module_topics: Settings) -> Iterator[Processor]:
    """A processor thread on ``module_topics`` that every test of the module shares."""
    with running_processor(module_topics) as processor:
        yield processor


@pytest.fixture(scope="module")
def module_api(
    module_topics: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API (authentication off) on ``module_topics`` that every test of the module shares."""
    config = ApiConfig(
        auth=AuthConfig(enabled=False), read_dir=tmp_path_factory.mktemp("module-read-model")
    )
    server = ApiServer(module_topics, config, None)
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def shared_example_stack(example: Example, settings: Settings) -> Iterator[ExampleStack]:
    """``example``'s stack on ``settings``' topics (created), for the tests of a module to share.

    Its processor and workers are child processes started now, before any test's environment
    fixture runs, so the session timeout is set for them here.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCH_SESSION_TIMEOUT_MS", str(SESSION_TIMEOUT_MS))
        with ExampleStack(example, settings, embedded_broker=False) as stack:
            yield stack


@pytest.fixture
def stack(shared_stack: ExampleStack) -> ExampleStack:
    """The module's ``shared_stack`` (each example test module defines its own), ready for the
    test: see :func:`next_test`."""
    return next_test(shared_stack)


def next_test(stack: ExampleStack) -> ExampleStack:
    """``stack`` ready for the next test: its fake LLM's script loaded again (rule counts
    forgotten), and a processor running even if the last test failed with it killed."""
    if stack.llm is not None and stack.example.fake_script is not None:
        stack.llm.load(orjson.loads(stack.example.fake_script.read_bytes()))
    if stack.processor is None or stack.processor.poll() is not None:
        stack.start_processor()
    return stack
