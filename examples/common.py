"""What every example application shares: a local stack with an LLM, and a way to drive a run.

An :class:`Example` names its definitions, the worker modules that serve its tasks, the fake LLM
script it runs against, its input, and an optional ``drive`` function that plays the humans
(approves a review, sends the next chat message) while the run goes on.

:class:`ExampleStack` starts the embedded broker (or uses ``settings.bootstrap``), a processor
and the example's workers as child processes, plus the fake LLM server unless
``OPENAI_BASE_URL`` is set, in which case the LLM tasks talk to that endpoint with
``OPENAI_API_KEY`` and ``ORCH_LLM_MODEL``. The processor can be killed and restarted mid-run,
which is what the end-to-end tests do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import click
import orjson

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl.validate import load_definition_file
from orchestrator.engine.records import Event
from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.errors import OrchestratorError, WorkflowNotFoundError
from orchestrator.stack import LocalStack
from workers.llm.fake_server import FakeLLM

Json = Any
FAKE_MODEL = "fake-model"
POLL_S = 0.2
STARTED_WITHIN_S = 60.0


@dataclass(frozen=True)
class Example:
    """One example application: what to register, which workers to run, what to start."""

    name: str
    workflow: str
    definitions: list[Path]
    worker_modules: list[str]
    input: dict[str, Json]
    fake_script: Path | None = None
    drive: Callable[[Run], None] | None = None
    timeout_s: float = 180.0
    env: dict[str, str] = field(default_factory=dict)


class Run:
    """One running workflow of an example, as ``drive`` functions and tests see it."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self._answered: set[tuple[str, str]] = set()  # (run id, task id) signalled already
        self._current = workflow_id  # the run of the chain that last waited

    def state(self) -> WorkflowState:
        """The workflow's state now (the fold of its history); WorkflowNotFoundError before it."""
        return self.client.status(self.workflow_id)

    def latest(self) -> WorkflowState:
        """The state of the newest run of the chain (following CONTINUE_AS_NEW successors)."""
        state = self.state()
        while state.continued_as is not None:
            try:
                state = self.client.status(state.continued_as)
            except OrchestratorError:
                break  # the successor has not started yet
        return state

    def waiting_task(self, ref_name: str, *, timeout: float = 60.0) -> TaskState:
        """Wait until the task ``ref_name`` waits for a signal (a HUMAN or WAIT task); return it.

        A task already answered through :meth:`answer` does not count, so answering twice in a
        row waits for the next instance rather than signalling the first one again.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.latest()
            except WorkflowNotFoundError:  # the start request is not processed yet
                if time.monotonic() >= deadline:
                    raise
                time.sleep(POLL_S)
                continue
            for task in reversed(list(state.tasks.values())):
                fresh = (state.workflow_id, task.task_id) not in self._answered
                if (
                    task.ref_name == ref_name
                    and task.awaiting_signal
                    and not task.status.terminal
                    and fresh
                ):
                    self._current = state.workflow_id
                    return task
            if state.status.terminal and state.continued_as is None:
                raise AssertionError(
                    f"{self.workflow_id} ended {state.status} ({state.reason}) "
                    f"before {ref_name!r} waited"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(f"{ref_name!r} did not wait within {timeout:g} s")
            time.sleep(POLL_S)

    def answer(self, ref_name: str, output: dict[str, Json], *, timeout: float = 60.0) -> None:
        """Wait for ``ref_name`` to wait, then complete it with ``output``."""
        task = self.waiting_task(ref_name, timeout=timeout)
        self._answered.add((self._current, task.task_id))
        self.client.signal(self._current, task.task_id, output=output)

    def wait(
        self, *, timeout: float, on_event: Callable[[Event], None] | None = None
    ) -> WorkflowState:
        """Wait for the end of the chain: the last run, after any CONTINUE_AS_NEW."""
        deadline = time.monotonic() + timeout
        state = self.client.wait(self.workflow_id, timeout=timeout, on_event=on_event)
        while state.continued_as is not None:
            remaining = max(deadline - time.monotonic(), 1.0)
            state = self.client.wait(state.continued_as, timeout=remaining, on_event=on_event)
        return state


class ExampleStack:
    """Broker, processor, the example's workers and an LLM endpoint, for one example."""

    def __init__(
        self,
        example: Example,
        settings: Settings,
        *,
        embedded_broker: bool = True,
        logs: Path | None = None,
    ) -> None:
        self.example = example
        self._exits = ExitStack()
        tmp = Path(self._exits.enter_context(tempfile.TemporaryDirectory(prefix="example-")))
        self.logs = logs or tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._settings = settings.model_copy(
            update={"state_dir": tmp / "state", "log_format": "json"}
        )
        self._embedded = embedded_broker
        self.llm: FakeLLM | None = None
        self.stack: LocalStack | None = None
        self.processor: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._exits.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._exits.close()

    @property
    def settings(self) -> Settings:
        """The settings that point at this stack's broker and topics."""
        assert self.stack is not None
        return self.stack.settings

    def _start(self) -> None:
        llm_env = self._llm_environment()
        self.stack = self._exits.enter_context(
            LocalStack(self._settings, embedded_broker=self._embedded)
        )
        self.start_processor()
        env = {**llm_env, **self.example.env}
        for module in self.example.worker_modules:
            name = module.rsplit(".", 1)[-1]
            self.stack.spawn(
                f"worker {module}", "worker", module, log_path=self.logs / f"{name}.log", env=env
            )
        client = self.client()
        for path in self.example.definitions:
            client.register(load_definition_file(path))

    def _llm_environment(self) -> dict[str, str]:
        """Where the LLM tasks send requests: a real endpoint if configured, else the fake one."""
        if os.environ.get("OPENAI_BASE_URL"):
            return {}
        script: Json = None
        if self.example.fake_script is not None:
            script = orjson.loads(self.example.fake_script.read_bytes())
        self.llm = FakeLLM(script)
        base_url = self.llm.start()
        self._exits.callback(self.llm.stop)
        return {
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "fake-key",
            "ORCH_LLM_MODEL": FAKE_MODEL,
            "ORCH_LLM_EMBEDDING_MODEL": FAKE_MODEL,
        }

    def client(self) -> Client:
        """A client of this stack (closed with it)."""
        client = Client(self.settings)
        self._exits.callback(client.close)
        return client

    def start_processor(self) -> subprocess.Popen[bytes]:
        """Start the processor (again, after :meth:`kill_processor`).

        A restart keeps the instance id, hence the transactional id, so the new process fences
        the killed one and aborts the transaction it left open, as a restarted pod would.
        """
        assert self.stack is not None
        self.processor = self.stack.spawn(
            "processor",
            "processor",
            "--instance-id",
            self.example.name,
            log_path=self.logs / "processor.log",
        )
        return self.processor

    def kill_processor(self) -> None:
        """SIGKILL the processor: no flush, no goodbye, as in a crash."""
        assert self.processor is not None
        os.killpg(self.processor.pid, signal.SIGKILL)
        self.processor.wait()

    def start(self, workflow_id: str | None = None, input: Json = None) -> Run:
        """Start the example's workflow; the :class:`Run` to drive and watch it.

        Returns once the processor has begun the run (its first event is readable).
        """
        client = self.client()
        workflow_id = workflow_id or f"{self.example.name}-{int(time.time() * 1000)}"
        run_input = self.example.input if input is None else input
        client.start(self.example.workflow, input=run_input, workflow_id=workflow_id)
        run = Run(client, workflow_id)
        deadline = time.monotonic() + STARTED_WITHIN_S
        while True:
            try:
                run.state()
            except WorkflowNotFoundError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(POLL_S)
            else:
                return run

    def finish(self, run: Run, on_event: Callable[[Event], None] | None = None) -> WorkflowState:
        """Drive ``run`` (if the example plays humans) while waiting for the end of its chain."""
        if self.example.drive is None:
            return run.wait(timeout=self.example.timeout_s, on_event=on_event)
        failures: list[BaseException] = []

        def drive() -> None:
            try:
                assert self.example.drive is not None
                self.example.drive(run)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                failures.append(exc)

        driver = threading.Thread(target=drive, name=f"{self.example.name}-drive", daemon=True)
        driver.start()
        try:
            state = run.wait(timeout=self.example.timeout_s, on_event=on_event)
        except Exception:
            driver.join(1.0)
            if failures:
                raise failures[0] from None
            raise
        driver.join(self.example.timeout_s)
        if failures:
            raise failures[0]
        return state


def run_example(example: Example, **overrides: Any) -> int:
    """Run ``example`` once on an embedded broker, printing its progress; 0 if it completed.

    ``overrides`` are :class:`Settings` fields; the rest come from ``ORCH_*`` variables.
    """
    settings = Settings(**overrides)
    where = os.environ.get("OPENAI_BASE_URL") or "the fake LLM server"
    click.echo(f"{example.name}: starting a broker, a processor and workers; LLM: {where}")
    with ExampleStack(example, settings) as stack:
        run = stack.start()
        click.echo(f"started {example.workflow} as {run.workflow_id}")
        started = time.monotonic()

        def progress(event: Event) -> None:
            click.echo(f"  [{time.monotonic() - started:6.2f}s] #{event.seq:<3} {describe(event)}")

        state = stack.finish(run, on_event=progress)
        click.echo(f"\nworkflow {state.status}; output:")
        click.echo(orjson.dumps(state.output, option=orjson.OPT_INDENT_2).decode())
        if state.status != "COMPLETED":
            click.echo(f"reason: {state.reason}\nlogs: {stack.logs}", err=True)
            return 1
    return 0


def describe(event: Event) -> str:
    """One line about an event, for progress output."""
    fields = orjson.loads(orjson.dumps(event, default=str))
    kind = type(event).__name__
    detail = fields.get("ref_name") or fields.get("task_id") or fields.get("name") or ""
    reason = fields.get("reason")
    return f"{kind} {detail}" + (f": {reason}" if reason else "")


def events_of(client: Client, workflow_id: str) -> Iterator[Event]:
    """Every event of a workflow, in order."""
    yield from client.history(workflow_id)
