"""An in-memory run of the pure engine: decide, evolve, outbound records, workers and timers.

Drives workflows the way the processor does, minus Kafka and RocksDB, so the workflow language
can be tested in milliseconds. Workers are plain functions from input to output; raising fails
the attempt. Timers fire by moving the simulated clock to the next due time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from orchestrator.dsl.model import TaskDef, WorkflowDef
from orchestrator.engine import decide, evolve
from orchestrator.engine.outbox import Exhausted, outbound
from orchestrator.engine.records import (
    AnyEvent,
    ExecuteTask,
    Input,
    ResultStatus,
    SignalTask,
    StartWorkflow,
    TaskResult,
    TerminateWorkflow,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.engine.timers import pending_timers
from orchestrator.scripts import ScriptEngine

Json = Any
Handler = Callable[[dict[str, Json]], Json]
START = 1_700_000_000_000


class Table:
    """Definitions by name and version, like the processor's table."""

    def __init__(self, definitions: Iterable[WorkflowDef]) -> None:
        self.by_name: dict[str, dict[int, WorkflowDef]] = {}
        self.task_defs: dict[str, TaskDef] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: WorkflowDef) -> None:
        """Register (or replace) one definition version."""
        self.by_name.setdefault(definition.name, {})[definition.version] = definition

    def task_def(self, name: str) -> TaskDef | None:
        """A registered TaskDef."""
        return self.task_defs.get(name)

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The definition, or its latest version when ``version`` is None."""
        versions = self.by_name.get(name, {})
        if not versions:
            return None
        return versions[max(versions)] if version is None else versions.get(version)


class Simulation:
    """Workflows, their workers and a clock, all in memory."""

    def __init__(
        self,
        definitions: Iterable[WorkflowDef],
        workers: dict[str, Handler] | None = None,
        *,
        manual: Iterable[str] = (),
    ) -> None:
        self.table = Table(definitions)
        self.workers = workers or {}
        self.manual = set(manual)  # task types whose commands wait in self.commands
        self.scripts = ScriptEngine()
        self.now = START
        self.states: dict[str, WorkflowState] = {}
        self.events: dict[str, list[AnyEvent]] = {}
        self.commands: list[ExecuteTask] = []
        self.executed: list[ExecuteTask] = []
        self.ignored: list[str] = []
        self.dead_letters: list[Exhausted] = []
        self._queue: deque[Input] = deque()

    def start(
        self, name: str, input: Json = None, workflow_id: str = "wf", version: int | None = None
    ) -> str:
        """Queue a start request and run until nothing more happens without a timer."""
        self.submit(
            StartWorkflow(workflow_id=workflow_id, name=name, version=version, input=input or {})
        )
        return workflow_id

    def signal(
        self, workflow_id: str, ref: str, output: Json = None, *, fail: str | None = None
    ) -> None:
        """Queue a signal for a waiting task and run."""
        status = ResultStatus.FAILED if fail else ResultStatus.COMPLETED
        self.submit(
            SignalTask(
                workflow_id=workflow_id, task_ref=ref, status=status, output=output, reason=fail
            )
        )

    def terminate(self, workflow_id: str, reason: str = "test") -> None:
        """Queue a terminate request and run."""
        self.submit(TerminateWorkflow(workflow_id=workflow_id, reason=reason))

    def submit(self, item: Input) -> None:
        """Queue any input and run."""
        self._queue.append(item)
        self.run()

    def run(self, *, advance_clock: bool = False, max_steps: int = 1_000_000) -> None:
        """Process queued inputs; with ``advance_clock``, also fire timers until none is left."""
        for _ in range(max_steps):
            if self._queue:
                self._step(self._queue.popleft())
            elif advance_clock and self._fire_next_timer():
                continue
            else:
                return
        raise AssertionError("simulation did not settle")

    def _step(self, item: Input) -> None:
        state = self.states.get(item.workflow_id)
        decision = decide(state, item, self.table, self.now, self.scripts)
        if decision.ignored:
            self.ignored.append(decision.ignored)
        for event in decision.events:
            state = evolve(state, event)
            self.events.setdefault(item.workflow_id, []).append(event)
            for record in outbound(event, state):
                self._deliver(record)
        if state is not None:
            self.states[item.workflow_id] = state

    def _deliver(self, record: Any) -> None:
        if isinstance(record, Exhausted):
            self.dead_letters.append(record)
        elif isinstance(record, ExecuteTask):
            if record.task_type in self.manual:
                self.commands.append(record)
            else:
                self._queue.append(self.execute(record))
        else:
            self._queue.append(record)

    def execute(self, command: ExecuteTask) -> TaskResult:
        """Run the worker function for ``command`` and return its result."""
        self.executed.append(command)
        common = {
            "workflow_id": command.workflow_id,
            "task_id": command.task_id,
            "attempt": command.attempt,
            "worker_id": "sim",
        }
        handler = self.workers.get(command.task_type)
        if handler is None:
            return TaskResult(
                status=ResultStatus.FAILED, reason=f"no worker for {command.task_type}", **common
            )
        try:
            output = handler(dict(command.input or {}))
        except Exception as exc:  # noqa: BLE001 - a worker's exception is the attempt's failure
            return TaskResult(
                status=ResultStatus.FAILED, reason=str(exc), error_type=type(exc).__name__, **common
            )
        return TaskResult(
            status=ResultStatus.COMPLETED,
            output=output if isinstance(output, dict) else {"result": output},
            **common,
        )

    def _fire_next_timer(self) -> bool:
        timers = sorted(t for state in self.states.values() for t in pending_timers(state))
        if not timers:
            return False
        self.now = max(self.now, timers[0].due_at)
        for timer in timers:
            if timer.due_at <= self.now:
                self._queue.append(timer.fired())
        return True

    def state(self, workflow_id: str = "wf") -> WorkflowState:
        """The current state of one workflow."""
        return self.states[workflow_id]

    def kinds(self, workflow_id: str = "wf") -> list[str]:
        """The event type names of one workflow, in order."""
        return [type(event).__name__ for event in self.events[workflow_id]]
