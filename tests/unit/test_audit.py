"""The audit checks: every rule of the state machine, time travel, and --from-time parsing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestrator.audit import REOPENING, Checker, Rule, state_at, verify
from orchestrator.engine.records import (
    Event,
    RequestRejected,
    TaskCompleted,
    TaskFailed,
    TaskInProgress,
    TaskScheduled,
    TaskStatus,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRejected,
    WorkflowStarted,
    WorkflowStatus,
)
from orchestrator.log.partitioning import partition_for
from orchestrator.replay import parse_time
from tests.replay.test_golden import GOLDEN, event_from_json, load

WID = "wf-1"
AT = 1_700_000_000_000
DEFINITION = {"name": "one", "version": 1, "tasks": [{"name": "solo", "taskReferenceName": "solo"}]}


def started(seq: int = 1, workflow_id: str = WID) -> WorkflowStarted:
    """The start of a one-task run."""
    return WorkflowStarted(
        workflow_id=workflow_id, seq=seq, at=AT, name="one", version=1, definition=DEFINITION
    )


def scheduled(seq: int, attempt: int = 1, task_id: str = "solo") -> TaskScheduled:
    """An attempt of a worker task handed out."""
    return TaskScheduled(
        workflow_id=WID,
        seq=seq,
        at=AT + seq,
        task_id=task_id,
        ref_name=task_id,
        task_type="solo",
        attempt=attempt,
    )


def completed(seq: int, attempt: int = 1, task_id: str = "solo") -> TaskCompleted:
    """An attempt finished."""
    return TaskCompleted(
        workflow_id=WID, seq=seq, at=AT + seq, task_id=task_id, attempt=attempt, output={"n": 1}
    )


def finished(seq: int) -> WorkflowCompleted:
    """The run finished."""
    return WorkflowCompleted(workflow_id=WID, seq=seq, at=AT + seq, output={"n": 1})


def clean() -> list[Event]:
    """A valid history: start, schedule, progress, complete, finish."""
    progress = TaskInProgress(workflow_id=WID, seq=3, at=AT + 3, task_id="solo", attempt=1)
    return [started(), scheduled(2), progress, completed(4), finished(5)]


def found(events: list[Event]) -> list[tuple[int, Rule]]:
    """The (seq, rule) pairs verify reports."""
    return [(violation.seq, violation.rule) for violation in verify(events)]


def test_clean_history_passes() -> None:
    """A valid history breaks no rule."""
    assert verify(clean()) == []


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_logs_pass(path: Any) -> None:
    """Every golden event log, recorded from the engine, breaks no rule."""
    events = [event_from_json(entry) for entry in load(path)["events"]]
    assert verify(events) == []


def test_interleaved_workflows_are_checked_apart() -> None:
    """Events of several workflows may interleave; each is checked against its own history."""
    other = [dataclasses.replace(event, workflow_id="wf-2") for event in clean()]
    mixed = [event for pair in zip(clean(), other, strict=True) for event in pair]
    checker = Checker()
    for event in mixed:
        checker.add(event)
    assert checker.violations == []
    assert (checker.workflows, checker.events) == (2, 10)


def test_gap_in_seq_is_reported() -> None:
    """A missing seq is reported at the event after the gap."""
    events = clean()
    del events[2]
    assert found(events) == [(4, Rule.SEQ)]


def test_repeated_seq_is_reported() -> None:
    """An event whose seq was already used is reported."""
    events = clean()
    events.insert(3, TaskInProgress(workflow_id=WID, seq=3, at=AT, task_id="solo", attempt=1))
    assert found(events) == [(3, Rule.SEQ)]


def test_first_event_must_start_the_workflow() -> None:
    """A history that does not begin with WorkflowStarted or WorkflowRejected is reported."""
    events = [dataclasses.replace(e, seq=e.seq - 1) for e in clean()[1:]]
    assert found(events) == [(1, Rule.FIRST), (1, Rule.FOLD)]


def test_rejected_run_is_a_valid_history() -> None:
    """A WorkflowRejected alone is a complete history."""
    rejected = WorkflowRejected(workflow_id=WID, seq=1, at=AT, name="x", reason="unknown")
    assert verify([rejected]) == []


def test_second_start_does_not_fold() -> None:
    """A second WorkflowStarted is refused by evolve and reported as a fold violation."""
    events = [*clean()[:2], started(seq=3)]
    assert found(events) == [(3, Rule.FOLD)]


def test_only_request_rejected_may_follow_a_terminal_event() -> None:
    """After the run ended, a RequestRejected is fine and anything else is reported."""
    rejected = RequestRejected(
        workflow_id=WID, seq=6, at=AT + 6, request_type="SignalTask", reason="ended"
    )
    late = TaskInProgress(workflow_id=WID, seq=7, at=AT + 7, task_id="solo", attempt=1)
    violations = verify([*clean(), rejected, late])
    assert [(v.seq, v.rule) for v in violations] == [(7, Rule.AFTER_TERMINAL)]
    assert "WorkflowCompleted (seq 5)" in violations[0].detail


@pytest.mark.parametrize("name", sorted(REOPENING))
def test_reopening_events_may_follow_a_terminal_event(name: str) -> None:
    """WorkflowReopened (and the restart/retry/rerun names) reopen an ended workflow."""

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Reopening(Event):
        removed: Any = None

    Reopening.__name__ = name
    failed = TaskFailed(workflow_id=WID, seq=3, at=AT + 3, task_id="solo", attempt=1, reason="x")
    ended = WorkflowFailed(workflow_id=WID, seq=4, at=AT + 4, reason="x", task_id="solo")
    reopened = Reopening(workflow_id=WID, seq=5, at=AT + 5, removed=["solo"])
    again = [scheduled(6, attempt=2), completed(7, attempt=2), finished(8)]
    violations = verify([started(), scheduled(2), failed, ended, reopened, *again])
    # The stand-in class is no engine event, so evolve may refuse it; no other rule may fire.
    assert {v.rule for v in violations} <= {Rule.FOLD}


def test_event_for_unknown_task_is_reported() -> None:
    """A TaskCompleted for a task no TaskScheduled introduced is reported (and does not fold)."""
    events = [*clean()[:4], completed(5, task_id="ghost"), finished(6)]
    assert found(events) == [(5, Rule.UNKNOWN_TASK), (5, Rule.FOLD)]


def test_event_for_stale_attempt_is_reported() -> None:
    """A task event for an attempt other than the current one is reported."""
    events = [started(), scheduled(2, attempt=2), completed(3, attempt=1), finished(4)]
    assert found(events) == [(3, Rule.STALE_ATTEMPT)]


def test_attempt_completed_twice_is_reported() -> None:
    """A second TaskCompleted of the same (task, attempt) is reported."""
    events = [*clean()[:4], completed(5), finished(6)]
    violations = verify(events)
    assert [(v.seq, v.rule) for v in violations] == [(5, Rule.COMPLETED_TWICE)]
    assert "already completed at seq 4" in violations[0].detail


def test_wrong_partition_is_reported_when_known() -> None:
    """An event on a partition other than its workflow's home partition is reported."""
    home = partition_for(WID, 6)
    checker = Checker(partitions=6)
    checker.add(started(), (home + 1) % 6)
    assert [v.rule for v in checker.violations] == [Rule.PARTITION]


def test_violation_names_workflow_seq_and_rule() -> None:
    """A violation prints as 'workflow #seq rule: detail'."""
    (violation,) = verify([*clean()[:4], completed(5), finished(6)])
    assert str(violation).startswith(f"{WID} #5 completed-twice: ")


def test_state_at_folds_a_prefix() -> None:
    """state_at(n) is the fold of the events with seq <= n."""
    events = clean()
    assert state_at(events, 0) is None
    first = state_at(events, 1)
    assert first is not None
    assert (first.status, first.tasks, first.seq) == (WorkflowStatus.RUNNING, {}, 1)
    second = state_at(events, 2)
    assert second is not None
    assert second.tasks["solo"].status is TaskStatus.SCHEDULED
    fourth = state_at(events, 4)
    assert fourth is not None
    assert (fourth.status, fourth.tasks["solo"].status) == (
        WorkflowStatus.RUNNING,
        TaskStatus.COMPLETED,
    )
    last = state_at(events, 5)
    assert last is not None
    assert (last.status, last.output) == (WorkflowStatus.COMPLETED, {"n": 1})
    assert state_at(events, 99) == last


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000000", 1_700_000_000_000),
        ("2026-11-21T18:00:00Z", 1_795_284_000_000),
        ("2026-11-21T18:00:00.123+00:00", 1_795_284_000_123),
        ("2026-11-21T19:00:00+01:00", 1_795_284_000_000),
        ("2026-11-21T18:00:00", 1_795_284_000_000),
        ("2026-11-21", 1_795_219_200_000),
    ],
)
def test_parse_time_takes_epoch_ms_or_iso_dates(text: str, expected: int) -> None:
    """--from-time takes epoch milliseconds or an ISO 8601 date (UTC unless it says)."""
    assert parse_time(text) == expected


def test_parse_time_refuses_other_text() -> None:
    """Text that is neither a number nor an ISO date is refused with the text quoted."""
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_time("yesterday")
