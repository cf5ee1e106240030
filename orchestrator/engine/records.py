"""The records that cross topics: requests and results (inputs), events, and task commands.

Each record is a frozen dataclass; ``log.codec`` derives its Avro schema from the fields, so
a field added here is a schema change. Free-form JSON fields are typed ``Json``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar

Json = Any


class WorkflowStatus(StrEnum):
    """Where a workflow is in its life."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    TERMINATED = "TERMINATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"

    @property
    def terminal(self) -> bool:
        """Whether the workflow ended (only retry, restart or rerun reopen it)."""
        return self not in (
            WorkflowStatus.RUNNING,
            WorkflowStatus.PAUSED,
            WorkflowStatus.COMPENSATING,
        )


class TaskStatus(StrEnum):
    """Where one attempt of a task is in its life."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        """Whether the attempt can no longer change."""
        return self in (
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.TIMED_OUT,
            TaskStatus.SKIPPED,
        )


class ResultStatus(StrEnum):
    """What a worker reports about an attempt."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    FAILED_WITH_TERMINAL_ERROR = "FAILED_WITH_TERMINAL_ERROR"


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """Base of every record: each belongs to one workflow and is keyed by its id."""

    topic_role: ClassVar[str] = ""
    workflow_id: str


# Requests (clients -> processor) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflow(Record):
    """Ask for a new run of a definition (the latest version when ``version`` is None)."""

    topic_role: ClassVar[str] = "requests"
    name: str
    version: int | None = None
    input: Json = None
    correlation_id: str | None = None
    requested_at: int = 0
    parent: Json = None
    definition: Json = None
    continued_from: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminateWorkflow(Record):
    """Ask to stop a running workflow now."""

    topic_role: ClassVar[str] = "requests"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalTask(Record):
    """Complete (or fail) a waiting task: WAIT, HUMAN, or an asyncComplete task in progress.

    ``task_ref`` is a task id or a taskReferenceName (its latest instance).
    """

    topic_role: ClassVar[str] = "requests"
    task_ref: str
    status: ResultStatus = ResultStatus.COMPLETED
    output: Json = None
    reason: str | None = None
    requested_at: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseWorkflow(Record):
    """Stop scheduling new tasks (results of running ones still land) until resumed."""

    topic_role: ClassVar[str] = "requests"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeWorkflow(Record):
    """Resume a paused workflow: schedule what waited."""

    topic_role: ClassVar[str] = "requests"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryWorkflow(Record):
    """Resume a FAILED or TIMED_OUT workflow from its failed task (a new attempt of it)."""

    topic_role: ClassVar[str] = "requests"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartWorkflow(Record):
    """Run an ended workflow again from the beginning, same id (optionally the latest version)."""

    topic_role: ClassVar[str] = "requests"
    use_latest_definition: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RerunWorkflow(Record):
    """Run a workflow again from one task on: that task and everything after it start anew."""

    topic_role: ClassVar[str] = "requests"
    from_task: str
    task_input: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SkipTask(Record):
    """Mark a task SKIPPED (with an output) so the workflow goes on without it."""

    topic_role: ClassVar[str] = "requests"
    task_ref: str
    output: Json = None


# Results (workers -> processor) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResult(Record):
    """What a worker reports about one attempt of one task."""

    topic_role: ClassVar[str] = "results"
    task_id: str
    attempt: int
    status: ResultStatus
    output: Json = None
    reason: str | None = None
    error_type: str | None = None
    worker_id: str = ""
    callback_after_seconds: int = 0


# Timers (the processor's timer table -> processor) ---------------------------------------------


class TimerKind(StrEnum):
    """What a due timer means for its task."""

    DISPATCH = "DISPATCH"
    WAIT = "WAIT"
    RESPONSE_TIMEOUT = "RESPONSE_TIMEOUT"
    TASK_TIMEOUT = "TASK_TIMEOUT"
    WORKFLOW_TIMEOUT = "WORKFLOW_TIMEOUT"
    POLL_TIMEOUT = "POLL_TIMEOUT"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired(Record):
    """A timer a task set is due; the processor feeds it to the engine like any input."""

    topic_role: ClassVar[str] = "timers"
    task_id: str
    attempt: int
    kind: TimerKind
    due_at: int


# Task commands (processor -> workers) ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecuteTask(Record):
    """The command a worker executes: a projection of a TaskScheduled event."""

    topic_role: ClassVar[str] = "tasks"
    task_id: str
    attempt: int
    task_type: str
    ref_name: str
    input: Json = None
    workflow_name: str = ""
    scheduled_at: int = 0
    ack: bool = False


# Definitions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowDefinition:
    """A registered workflow definition, as it travels on the definitions topic."""

    name: str
    version: int
    definition: Json
    registered_at: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDefinition:
    """A registered task definition (Conductor's TaskDef), on the definitions topic."""

    name: str
    definition: Json
    registered_at: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A record that could not be processed: the original bytes, where they were, and why."""

    key: str | None
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    payload: bytes | None = None
    failed_at: int = 0


# Events (processor -> the log) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Record):
    """A fact about a workflow; ``seq`` numbers a workflow's events from 1, ``at`` is epoch ms."""

    topic_role: ClassVar[str] = "events"
    seq: int
    at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStarted(Event):
    """A run began, with a snapshot of the definition it follows for its whole life."""

    name: str
    version: int
    input: Json = None
    correlation_id: str | None = None
    definition: Json = None
    variables: Json = None
    parent: Json = None
    continued_from: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRejected(Event):
    """A start request could not begin a run (unknown definition, bad input)."""

    name: str
    version: int | None = None
    input: Json = None
    correlation_id: str | None = None
    reason: str
    parent: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskScheduled(Event):
    """An attempt of a task was handed to workers of its type."""

    task_id: str
    ref_name: str
    task_type: str
    attempt: int
    input: Json = None
    worker: bool = True
    optional: bool = False
    async_complete: bool = False
    dispatch_at: int | None = None
    wait_until: int | None = None
    policy: Json = None
    retry_delay_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskInProgress(Event):
    """A worker reported it is working on an attempt (``awaiting_signal``: done, but async)."""

    task_id: str
    attempt: int
    worker_id: str = ""
    output: Json = None
    awaiting_signal: bool = False
    callback_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskReassigned(Event):
    """A HUMAN task was overdue and went to the next person of its escalation (``level`` 1..n)."""

    task_id: str
    attempt: int
    level: int
    assignee: str | None = None
    group: str | None = None
    due_at: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalForwarded(Event):
    """A signal came to a run that continued as new; it goes on to the successor run."""

    to_workflow_id: str
    task_ref: str
    status: ResultStatus = ResultStatus.COMPLETED
    output: Json = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalQueued(Event):
    """A signal came before its task waited; the task queues signals, so it is kept for it."""

    task_ref: str
    status: ResultStatus = ResultStatus.COMPLETED
    output: Json = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalDequeued(Event):
    """A task that queues signals started and took the oldest signal kept for it."""

    task_id: str
    task_ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDispatched(Event):
    """A delayed task's start time came; its command went to the workers."""

    task_id: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopIterated(Event):
    """A DO_WHILE iteration finished; ``again`` records whether another one starts."""

    task_id: str
    iteration: int
    output: Json = None
    again: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VariablesUpdated(Event):
    """A SET_VARIABLE task changed workflow variables."""

    task_id: str
    variables: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCompleted(Event):
    """An attempt finished with an output."""

    task_id: str
    attempt: int
    output: Json = None
    worker_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTimedOut(Event):
    """An attempt ran out of time: ``kind`` is RESPONSE_TIMEOUT or TASK_TIMEOUT."""

    task_id: str
    attempt: int
    kind: str
    reason: str
    retrying: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutAlerted(Event):
    """A timeout passed under policy ALERT_ONLY: recorded, nothing else changes."""

    task_id: str | None = None
    kind: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSkipped(Event):
    """An operator skipped a task; it counts as done with ``output``."""

    task_id: str
    attempt: int
    output: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(Event):
    """An attempt failed; ``error_type`` names the exception class when a handler raised."""

    task_id: str
    attempt: int
    reason: str
    error_type: str | None = None
    terminal: bool = False
    worker_id: str = ""
    retrying: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowCompleted(Event):
    """The run finished; ``output`` is the resolved outputParameters.

    ``continued_as`` names the fresh run a CONTINUE_AS_NEW task starts with ``next_input``.
    """

    output: Json = None
    continued_as: str | None = None
    next_input: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowFailed(Event):
    """The run failed (``timed_out``: it ran out of time); ``task_id`` names the cause.

    ``compensation`` records the saga compensations that ran (and whether one failed);
    ``failure_workflow_id`` links the failureWorkflow started for this failure.
    """

    reason: str
    task_id: str | None = None
    output: Json = None
    timed_out: bool = False
    compensation: Json = None
    failure_workflow_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationStarted(Event):
    """The run failed; the compensations of its completed steps run, in reverse order."""

    reason: str
    task_id: str | None = None
    steps: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowPaused(Event):
    """No new task is scheduled until the workflow is resumed."""

    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowResumed(Event):
    """A paused workflow goes on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowReopened(Event):
    """An ended workflow runs again: ``mode`` retry, restart or rerun; ``removed`` tasks restart.

    A restart also carries the definition snapshot and input it restarts with.
    """

    mode: str
    removed: Json = None
    definition: Json = None
    input: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTerminated(Event):
    """The run was stopped on request (or by a TERMINATE task)."""

    reason: str
    output: Json = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRejected(Event):
    """A request about an existing workflow was refused; nothing else changed."""

    request_type: str
    reason: str


Input = (
    StartWorkflow
    | TerminateWorkflow
    | SignalTask
    | PauseWorkflow
    | ResumeWorkflow
    | RetryWorkflow
    | RestartWorkflow
    | RerunWorkflow
    | SkipTask
    | TaskResult
    | TimerFired
)
AnyEvent = (
    WorkflowStarted
    | WorkflowRejected
    | TaskScheduled
    | TaskInProgress
    | TaskTimedOut
    | TimeoutAlerted
    | TaskSkipped
    | CompensationStarted
    | WorkflowPaused
    | WorkflowResumed
    | WorkflowReopened
    | TaskReassigned
    | SignalForwarded
    | SignalQueued
    | SignalDequeued
    | TaskDispatched
    | LoopIterated
    | VariablesUpdated
    | TaskCompleted
    | TaskFailed
    | WorkflowCompleted
    | WorkflowFailed
    | WorkflowTerminated
    | RequestRejected
)
EVENT_TYPES: tuple[type[Event], ...] = (
    WorkflowStarted,
    WorkflowRejected,
    TaskScheduled,
    TaskInProgress,
    TaskTimedOut,
    TimeoutAlerted,
    TaskSkipped,
    CompensationStarted,
    WorkflowPaused,
    WorkflowResumed,
    WorkflowReopened,
    TaskReassigned,
    SignalForwarded,
    SignalQueued,
    SignalDequeued,
    TaskDispatched,
    LoopIterated,
    VariablesUpdated,
    TaskCompleted,
    TaskFailed,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowTerminated,
    RequestRejected,
)
INPUT_TYPES: tuple[type[Record], ...] = (
    StartWorkflow,
    TerminateWorkflow,
    SignalTask,
    PauseWorkflow,
    ResumeWorkflow,
    RetryWorkflow,
    RestartWorkflow,
    RerunWorkflow,
    SkipTask,
    TaskResult,
)
TERMINAL_EVENTS = (WorkflowCompleted, WorkflowFailed, WorkflowTerminated, WorkflowRejected)


def as_json(record: Any) -> dict[str, Json]:
    """A record as a JSON object: its fields, plus ``type``, its record type name."""
    data: dict[str, Json] = {"type": type(record).__name__}
    for field in fields(record):
        value = getattr(record, field.name)
        data[field.name] = value.hex() if isinstance(value, bytes) else value
    return data
