"""Properties of decide + evolve over random definitions and random input sequences.

The driver does what the processor does: for each input, ``decide`` against the current state,
then fold the decision's events into it. Inputs include results with random statuses for current,
stale, unknown and already-finished attempts, re-deliveries, terminates, duplicate starts and a
redefinition of the running workflow's name and version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, assert_never

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.dsl import WorkflowDef, parse_definition
from orchestrator.engine import WorkflowState, decide, evolve, fold
from orchestrator.engine.records import (
    TERMINAL_EVENTS,
    AnyEvent,
    Input,
    RequestRejected,
    ResultStatus,
    StartWorkflow,
    TaskInProgress,
    TaskResult,
    TaskScheduled,
    TaskStatus,
    TerminateWorkflow,
)

WORKFLOW_IDS = ("w0", "w1")
NAME = "prop"
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
REFS = ("fetch", "charge", "ship_it", "t-3", "notify", "t5", "archive")
FINISHING = (ResultStatus.COMPLETED, ResultStatus.FAILED, ResultStatus.FAILED_WITH_TERMINAL_ERROR)

# Strategies -------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
task_outputs = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"v": json_values, "items": st.lists(st.fixed_dictionaries({"id": json_scalars}))}
    ),
    json_values,
)


@st.composite
def parameter(draw: st.DrawFn, refs: list[str]) -> Any:
    """One input or output parameter: a literal or an expression over the workflow and tasks."""
    ref = draw(st.sampled_from(refs))
    return draw(
        st.one_of(
            json_values,
            st.just("${workflow.input.k}"),
            st.just(f"${{{ref}.output.v}}"),
            st.just(f"${{{ref}.output}}"),
            st.just(f"id-${{{ref}.output.items[0].id}}/${{workflow.input.k}}"),
            st.just(f"${{{ref}.output.items[*].id}}"),
            st.just(f"${{{ref}.status}}"),
        )
    )


@st.composite
def definitions(draw: st.DrawFn) -> WorkflowDef:
    """A valid definition named NAME, version 1, with 1-6 SIMPLE tasks."""
    count = draw(st.integers(min_value=1, max_value=6))
    refs = draw(st.permutations(REFS))[:count]
    params = st.dictionaries(st.sampled_from(["a", "b", "c"]), parameter(refs), max_size=3)
    tasks = [
        {"name": draw(st.sampled_from(["http", "llm", "mail"])), "taskReferenceName": ref}
        | {"inputParameters": draw(params)}
        for ref in refs
    ]
    return parse_definition(
        {"name": NAME, "version": 1, "tasks": tasks, "outputParameters": draw(params)}
    )


@dataclass(frozen=True)
class Start:
    """Start (or re-start) a workflow; ``known`` False names no registered definition."""

    wid: int
    known: bool
    input: Any


@dataclass(frozen=True)
class Current:
    """A result for the attempt the workflow is waiting on, if any."""

    wid: int
    status: ResultStatus
    output: Any


@dataclass(frozen=True)
class Arbitrary:
    """A result for any task (or one that does not exist) at any attempt."""

    wid: int
    task: int
    attempt: int
    status: ResultStatus
    output: Any


@dataclass(frozen=True)
class Redeliver:
    """Deliver again a result that was already applied."""

    pick: int


@dataclass(frozen=True)
class Terminate:
    """Ask to terminate a workflow."""

    wid: int
    reason: str


@dataclass(frozen=True)
class Redefine:
    """Register a different definition under the same name and version."""


Action = Start | Current | Arbitrary | Redeliver | Terminate | Redefine

wids = st.integers(min_value=0, max_value=len(WORKFLOW_IDS) - 1)
statuses = st.sampled_from(list(ResultStatus))
completions = st.builds(Current, wids, st.just(ResultStatus.COMPLETED), task_outputs)
# one_of picks branches uniformly: repeating a branch weights it, so most runs get far enough
# to complete, and the rarer inputs (terminates, unknown definitions) still appear often.
actions = st.one_of(
    *[completions] * 6,
    *[st.builds(Current, wids, statuses, task_outputs)] * 2,
    *[st.builds(Arbitrary, wids, st.integers(0, 6), st.integers(0, 2), statuses, task_outputs)] * 2,
    *[st.builds(Redeliver, st.integers(0, 50))] * 2,
    st.builds(Start, wids, st.sampled_from([True, True, True, False]), st.none() | json_values),
    st.builds(Terminate, wids, st.text(max_size=5)),
    st.just(Redefine()),
)
openings = st.lists(st.builds(Start, wids, st.just(True), st.none()), min_size=1, max_size=2)
scenarios = st.tuples(
    definitions(),
    definitions(),
    st.builds(list.__add__, openings, st.lists(actions, min_size=4, max_size=30)),
    json_values,
)

# The driver -------------------------------------------------------------------------------------


class Registry:
    """Definitions by (name, version); ``version=None`` means the latest."""

    def __init__(self, definition: WorkflowDef) -> None:
        self.current = definition

    def task_def(self, name: str) -> None:
        """No task types are registered: no retries, no timeouts."""
        return

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The one registered definition, when name and version match it."""
        if name == self.current.name and version in (None, self.current.version):
            return self.current
        return None


@dataclass
class Processor:
    """Holds each workflow's state and events as the processor's loop would."""

    registry: Registry
    states: dict[str, WorkflowState] = field(default_factory=dict)
    events: dict[str, list[AnyEvent]] = field(default_factory=dict)
    applied_results: list[TaskResult] = field(default_factory=list)
    now: int = 1_000

    def apply(self, item: Input) -> list[AnyEvent]:
        """Decide ``item``, check the decision's local invariants, fold its events; return them."""
        self.now += 1
        state = self.states.get(item.workflow_id)
        before = None if state is None else orjson.dumps(state.to_json())
        decision = decide(state, item, self.registry, self.now)
        after = None if state is None else orjson.dumps(state.to_json())
        assert before == after, "decide changed the state it was given"
        assert (decision.ignored is None) == bool(decision.events), decision
        for event in decision.events:
            state = evolve(state, event)
        if state is not None:
            self.states[item.workflow_id] = state
        if decision.events:
            self.events.setdefault(item.workflow_id, []).extend(decision.events)
        return decision.events

    def act(self, action: Action, alternative: WorkflowDef, start_input: Any) -> None:
        """Turn one abstract action into an input and apply it."""
        match action:
            case Start():
                name = NAME if action.known else "unregistered"
                input_ = action.input if action.input is not None else {"k": start_input}
                self.apply(
                    StartWorkflow(workflow_id=WORKFLOW_IDS[action.wid], name=name, input=input_)
                )
            case Current():
                self._current(action)
            case Arbitrary():
                self._arbitrary(action)
            case Redeliver():
                if self.applied_results:
                    item = self.applied_results[action.pick % len(self.applied_results)]
                    self.apply(item)
            case Terminate():
                self.apply(
                    TerminateWorkflow(workflow_id=WORKFLOW_IDS[action.wid], reason=action.reason)
                )
            case Redefine():
                self.registry.current = alternative
            case _:
                assert_never(action)

    def _current(self, action: Current) -> None:
        wid = WORKFLOW_IDS[action.wid]
        state = self.states.get(wid)
        open_tasks = (
            [] if state is None else [t for t in state.tasks.values() if not t.status.terminal]
        )
        if open_tasks:
            task = open_tasks[-1]
            self._result(wid, task.task_id, task.attempt, action.status, action.output)

    def _arbitrary(self, action: Arbitrary) -> None:
        wid = WORKFLOW_IDS[action.wid]
        state = self.states.get(wid)
        refs = (
            []
            if state is None or state.definition is None
            else [t.taskReferenceName for t in state.workflow_def.tasks]
        )
        task_id = refs[action.task] if action.task < len(refs) else "ghost"
        self._result(wid, task_id, action.attempt, action.status, action.output)

    def _result(
        self, wid: str, task_id: str, attempt: int, status: ResultStatus, output: Any
    ) -> None:
        result = TaskResult(
            workflow_id=wid, task_id=task_id, attempt=attempt, status=status, output=output
        )
        if self.apply(result):
            self.applied_results.append(result)
            if status in FINISHING:
                assert self.apply(result) == [], f"immediate re-delivery of {result} emitted events"


def drive(scenario: tuple[WorkflowDef, WorkflowDef, list[Action], Any]) -> Processor:
    """Run a scenario's actions through a fresh processor."""
    definition, alternative, steps, start_input = scenario
    processor = Processor(Registry(definition))
    for step in steps:
        processor.act(step, alternative, start_input)
    return processor


def as_json(state: WorkflowState | None) -> Any:
    """A state's JSON as it would be stored (through orjson)."""
    return None if state is None else orjson.loads(orjson.dumps(state.to_json()))


# Properties -------------------------------------------------------------------------------------
# Generating a scenario costs far more than driving it, so one test checks every invariant of a
# driven scenario; each check names the property it holds.


def check_replay_equals_incremental(processor: Processor) -> None:
    """(a) Folding every emitted event from scratch gives exactly the state the loop held."""
    for wid, events in processor.events.items():
        assert as_json(fold(events)) == as_json(processor.states.get(wid)), "replay != incremental"


def check_state_round_trips(processor: Processor) -> None:
    """(c) WorkflowState.from_json(to_json()) through orjson gives an equal state."""
    for state in processor.states.values():
        restored = WorkflowState.from_json(orjson.loads(orjson.dumps(state.to_json())))
        assert restored == state, "state does not round-trip through JSON"
        assert as_json(restored) == as_json(state)


def check_seq_is_gapless(processor: Processor) -> None:
    """(d) Each workflow's events are numbered 1..n in order, and its state's seq is n."""
    for wid, events in processor.events.items():
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), "seq has gaps"
        assert all(e.workflow_id == wid for e in events)
        assert processor.states[wid].seq == len(events)


def check_single_end(processor: Processor) -> None:
    """(e) A workflow ends at most once; after its terminal event only RequestRejected follows."""
    for events in processor.events.values():
        ends = [i for i, e in enumerate(events) if isinstance(e, TERMINAL_EVENTS)]
        assert len(ends) <= 1, f"several terminal events: {[type(e).__name__ for e in events]}"
        if ends:
            after = events[ends[0] + 1 :]
            assert all(isinstance(e, RequestRejected) for e in after), "events after the end"


def check_scheduling_order(processor: Processor) -> None:
    """Each snapshot task is scheduled at most once, in definition order, at attempt 1."""
    for wid, events in processor.events.items():
        state = processor.states[wid]
        scheduled = [e for e in events if isinstance(e, TaskScheduled)]
        if state.definition is None:
            assert scheduled == [], "a rejected workflow scheduled tasks"
            continue
        refs = [t.taskReferenceName for t in state.workflow_def.tasks]
        assert [e.ref_name for e in scheduled] == refs[: len(scheduled)], "out of order"
        assert {e.attempt for e in scheduled} <= {1}
        unfinished = [t for t in state.tasks.values() if t.status is not TaskStatus.COMPLETED]
        assert len(unfinished) <= 1, "more than one task open or failed at once"


@PROPERTY_SETTINGS
@given(scenarios)
def test_incremental_loop_invariants(scenario: Any) -> None:
    """Replay equals the incremental fold; states round-trip; seq is gapless; a run ends once."""
    processor = drive(scenario)
    check_replay_equals_incremental(processor)
    check_state_round_trips(processor)
    check_seq_is_gapless(processor)
    check_single_end(processor)
    check_scheduling_order(processor)
    assert drive(scenario).events == processor.events, "the same inputs gave different events"


@PROPERTY_SETTINGS
@given(scenarios)
def test_redelivering_an_applied_result_changes_nothing(scenario: Any) -> None:
    """(b) An applied result delivered again emits nothing (an open attempt's heartbeat aside)."""
    processor = drive(scenario)
    for result in processor.applied_results:
        state = processor.states[result.workflow_id]
        before = as_json(state)
        task = state.tasks[result.task_id]
        heartbeat_for_open_attempt = (
            result.status is ResultStatus.IN_PROGRESS
            and not state.status.terminal
            and task.attempt == result.attempt
            and not task.status.terminal
        )
        events = processor.apply(result)
        if heartbeat_for_open_attempt:
            assert [type(e) for e in events] == [TaskInProgress]
        else:
            assert events == [], f"re-delivery of {result} emitted {events}"
            assert as_json(processor.states[result.workflow_id]) == before
