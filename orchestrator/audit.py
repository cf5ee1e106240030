"""Auditing the log: time travel, and a check of the rules every workflow's events obey.

``state_at`` folds a prefix of a workflow's events (``history_at`` reads them first).
``verify`` checks events against the state machine's rules; ``verify_log`` runs it over the
whole ``events`` topic in one pass, partition by partition, holding only the workflows of the
partition it reads. Copying a slice of the log for a new read model is ``orchestrator.replay``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.engine import records
from orchestrator.engine.evolve import evolve, fold
from orchestrator.engine.records import (
    Event,
    RequestRejected,
    TaskCompleted,
    TaskScheduled,
    WorkflowRejected,
    WorkflowStarted,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import BrokerError, WorkflowError, WorkflowNotFoundError
from orchestrator.log.partitioning import partition_for
from orchestrator.log.reader import read_events
from orchestrator.log.scan import topic_partitions
from orchestrator.log.topics import Topics

Json = Any

#: Events that legitimately follow a terminal event: they reopen the workflow.
REOPENING = frozenset({"WorkflowReopened", "WorkflowRestarted", "WorkflowRetried", "WorkflowRerun"})
#: How long reading one partition of ``events`` may take in ``verify_log``.
PARTITION_TIMEOUT_S = 600.0


class Rule(StrEnum):
    """A rule of the state machine that every workflow's events obey."""

    SEQ = "seq"  # seq runs 1..n without gaps or repeats
    FIRST = "first-event"  # the first event is WorkflowStarted or WorkflowRejected
    AFTER_TERMINAL = "after-terminal"  # only RequestRejected or a reopening after a terminal event
    UNKNOWN_TASK = "unknown-task"  # a task event names a task no TaskScheduled introduced
    STALE_ATTEMPT = "stale-attempt"  # a task event names an attempt that is not the current one
    COMPLETED_TWICE = "completed-twice"  # one (task, attempt) completed twice
    FOLD = "fold"  # evolve refuses the event
    PARTITION = "partition"  # the event is not on the partition its workflow id hashes to


@dataclass(frozen=True, slots=True)
class Violation:
    """One event that breaks one rule."""

    workflow_id: str
    seq: int
    rule: Rule
    detail: str

    def __str__(self) -> str:
        return f"{self.workflow_id} #{self.seq} {self.rule}: {self.detail}"


@dataclass
class Report:
    """What ``verify_log`` checked and what it found."""

    topic: str
    partitions: int = 0
    workflows: int = 0
    events: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no event broke a rule."""
        return not self.violations

    def to_json(self) -> dict[str, Json]:
        """The report as plain JSON."""
        return dataclasses.asdict(self)


def is_terminal(event: Event) -> bool:
    """Whether ``event`` ends its workflow: a ``Workflow*`` type in ``records.TERMINAL_EVENTS``."""
    return isinstance(event, records.TERMINAL_EVENTS) and type(event).__name__.startswith(
        "Workflow"
    )


class _Track:
    """What the checker remembers about one workflow between its events."""

    __slots__ = ("attempts", "completed", "count", "ended", "next_seq", "state")

    def __init__(self) -> None:
        self.next_seq = 1
        self.count = 0
        self.ended: tuple[str, int] | None = None  # the terminal event's type and seq
        self.attempts: dict[str, int] = {}  # task id -> current attempt
        self.completed: dict[tuple[str, int], int] = {}  # (task id, attempt) -> seq
        self.state: WorkflowState | None = None

    def check(self, event: Event) -> list[tuple[Rule, str]]:
        """The rules ``event`` breaks, given the workflow's earlier events."""
        found: list[tuple[Rule, str]] = []
        name = type(event).__name__
        if event.seq != self.next_seq:
            gap = event.seq > self.next_seq
            problem = "skips" if gap else "repeats or goes back from"
            found.append((Rule.SEQ, f"{name} has seq {event.seq}; it {problem} {self.next_seq}"))
        self.next_seq = max(self.next_seq, event.seq + 1)
        if self.count == 0 and not isinstance(event, WorkflowStarted | WorkflowRejected):
            found.append((Rule.FIRST, f"{name} is the first event"))
        self.count += 1
        self._lifecycle(event, name, found)
        self._task(event, name, found)
        self._fold(event, name, found)
        return found

    def _lifecycle(self, event: Event, name: str, found: list[tuple[Rule, str]]) -> None:
        if name in REOPENING:
            self.ended = None
            for task_id in getattr(event, "removed", None) or ():
                self.attempts.pop(task_id, None)  # it starts again with a new TaskScheduled
        elif self.ended is not None and not isinstance(event, RequestRejected):
            ended_by, ended_at = self.ended
            found.append((Rule.AFTER_TERMINAL, f"{name} after {ended_by} (seq {ended_at})"))
        if is_terminal(event):
            self.ended = (name, event.seq)

    def _task(self, event: Event, name: str, found: list[tuple[Rule, str]]) -> None:
        if isinstance(event, TaskScheduled):
            self.attempts[event.task_id] = event.attempt
            return
        task_id, attempt = getattr(event, "task_id", None), getattr(event, "attempt", None)
        if not isinstance(task_id, str) or not isinstance(attempt, int):
            return  # not about one attempt of one task
        current = self.attempts.get(task_id)
        if current is None and name != "TaskSkipped":  # a skip may come before the task
            found.append((Rule.UNKNOWN_TASK, f"{name} for task {task_id!r}, never scheduled"))
        elif current is not None and attempt != current:
            detail = f"{name} for attempt {attempt} of {task_id!r}; the current one is {current}"
            found.append((Rule.STALE_ATTEMPT, detail))
        if isinstance(event, TaskCompleted):
            first = self.completed.setdefault((task_id, attempt), event.seq)
            if first != event.seq:
                detail = f"attempt {attempt} of {task_id!r} was already completed at seq {first}"
                found.append((Rule.COMPLETED_TWICE, detail))

    def _fold(self, event: Event, name: str, found: list[tuple[Rule, str]]) -> None:
        never_began = self.state is None and self.count > 1
        try:
            self.state = evolve(self.state, event)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, AttributeError, AssertionError) as exc:
            if not never_began:  # the first-event violation already explains the rest
                found.append((Rule.FOLD, f"{name} does not fold: {type(exc).__name__}: {exc}"))


class Checker:
    """Checks the events of many workflows as they stream past, in one pass.

    Memory grows with the workflows seen (each keeps its folded state), not with the events.
    """

    def __init__(self, partitions: int | None = None) -> None:
        self.partitions = partitions
        self.events = 0
        self.violations: list[Violation] = []
        self._tracks: dict[str, _Track] = {}

    @property
    def workflows(self) -> int:
        """How many distinct workflows the checker saw."""
        return len(self._tracks)

    def add(self, event: Event, partition: int | None = None) -> None:
        """Check one event, which ``partition`` of ``events`` held (when known)."""
        self.events += 1
        track = self._tracks.get(event.workflow_id)
        if track is None:
            track = self._tracks[event.workflow_id] = _Track()
        found = track.check(event)
        if partition is not None and self.partitions is not None:
            home = partition_for(event.workflow_id, self.partitions)
            if home != partition:
                found.append((Rule.PARTITION, f"on partition {partition}, its home is {home}"))
        self.violations.extend(Violation(event.workflow_id, event.seq, r, d) for r, d in found)


def verify(events: Iterable[Event]) -> list[Violation]:
    """Every rule the events break, in log order; events of several workflows may interleave."""
    checker = Checker()
    for event in events:
        checker.add(event)
    return checker.violations


def verify_log(settings: Settings, *, timeout: float = PARTITION_TIMEOUT_S) -> Report:
    """Check every workflow in the whole ``events`` topic, one partition at a time.

    ``timeout`` bounds the read of each partition.
    """
    topic = Topics.from_settings(settings).events
    count = topic_partitions(settings, topic)
    if count is None:
        raise BrokerError(f"topic {topic} does not exist")
    report = Report(topic=topic, partitions=count)
    for number in range(count):
        # A workflow lives on one partition, so each partition is checked on its own.
        checker = Checker(partitions=count)
        for event in read_events(settings, [number], timeout=timeout):
            checker.add(event, number)
        report.workflows += checker.workflows
        report.events += checker.events
        report.violations.extend(checker.violations)
    return report


# Time travel -------------------------------------------------------------------------------------


def state_at(events: Iterable[Event], n: int) -> WorkflowState | None:
    """One workflow's state as of event ``n``: the fold of its events with ``seq <= n``.

    In a valid history that is the fold of the first ``n`` events; None when ``n < 1``.
    """
    return fold([event for event in events if event.seq <= n])  # type: ignore[misc]


def history_at(source: Client | Settings, workflow_id: str, n: int) -> dict[str, Json]:
    """The workflow's state as of event ``n`` as JSON, shaped like ``status --json``.

    ``n`` past the last event gives the current state.
    """
    client = source if isinstance(source, Client) else Client(source)
    try:
        events = client.history(workflow_id)
    finally:
        if client is not source:
            client.close()
    if not events:
        raise WorkflowNotFoundError(f"no events for workflow {workflow_id}")
    state = state_at(events, n)
    if state is None:
        raise WorkflowError(f"workflow {workflow_id} has events 1..{events[-1].seq}, not {n}")
    return {**state.to_json(), "tasks": [task.to_json() for task in state.tasks.values()]}
