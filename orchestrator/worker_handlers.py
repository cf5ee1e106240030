"""Task handlers: how one is declared, called, and how its outcome becomes a :class:`TaskResult`.

Calling a handler never raises: whatever it returns or raises is turned into a result, the way
the engine turns an expected failure into data. Nothing here touches Kafka.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import structlog

from orchestrator.dsl.names import check_task_type
from orchestrator.engine.records import ExecuteTask, ResultStatus, TaskResult
from orchestrator.errors import HandlerError, TerminalError
from orchestrator.telemetry import get_logger

__all__ = [
    "Handler",
    "TaskContext",
    "completed_result",
    "error_result",
    "normalize_output",
]

Json = Any
HandlerFunction = Callable[..., Any]

_log = get_logger("orchestrator.worker")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskContext:
    """What a handler may know about the task it runs, passed as its optional second argument."""

    workflow_id: str
    task_id: str
    task_type: str
    attempt: int
    ref_name: str
    workflow_name: str

    @classmethod
    def of(cls, task: ExecuteTask) -> TaskContext:
        """The context of the task command ``task``."""
        return cls(
            workflow_id=task.workflow_id,
            task_id=task.task_id,
            task_type=task.task_type,
            attempt=task.attempt,
            ref_name=task.ref_name,
            workflow_name=task.workflow_name,
        )


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered handler: the function, its task type, and how it wants to be called."""

    task_type: str
    function: HandlerFunction
    is_async: bool
    wants_context: bool

    @classmethod
    def declare(cls, task_type: str, function: HandlerFunction) -> Handler:
        """Inspect ``function``; raise :class:`HandlerError` unless it takes (input[, ctx])."""
        try:
            check_task_type(task_type)
        except ValueError as exc:
            raise HandlerError(str(exc)) from exc
        name = getattr(function, "__qualname__", repr(function))
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError) as exc:
            raise HandlerError(f"cannot inspect the signature of handler {name}: {exc}") from exc
        params = list(signature.parameters.values())
        positional = [p for p in params if p.kind in _POSITIONAL]
        required_keywords = [
            p.name
            for p in params
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
        ]
        if len(positional) not in (1, 2) or required_keywords:
            raise HandlerError(
                f"handler {name} for task {task_type!r} must take (input) or (input, ctx), "
                f"not {signature}"
            )
        return cls(
            task_type=task_type,
            function=function,
            is_async=inspect.iscoroutinefunction(function),
            wants_context=len(positional) == 2,
        )

    def run(self, task: ExecuteTask, worker_id: str) -> TaskResult:
        """Call a sync handler on ``task``; return its result, a failure if it raised."""
        with structlog.contextvars.bound_contextvars(**_log_fields(task)):
            try:
                return outcome(task, self.function(*self._arguments(task)), worker_id)
            except Exception as exc:  # noqa: BLE001 - any handler failure becomes a result
                return _failure(task, exc, worker_id)

    async def run_async(self, task: ExecuteTask, worker_id: str) -> TaskResult:
        """Await an async handler on ``task``; return its result, a failure if it raised."""
        # Each asyncio task runs in its own copy of the context, so the binding stays with it.
        structlog.contextvars.bind_contextvars(**_log_fields(task))
        try:
            coroutine = cast(Awaitable[Any], self.function(*self._arguments(task)))
            return outcome(task, await coroutine, worker_id)
        except Exception as exc:  # noqa: BLE001 - any handler failure becomes a result
            return _failure(task, exc, worker_id)

    def _arguments(self, task: ExecuteTask) -> tuple[Any, ...]:
        if self.wants_context:
            return (task.input, TaskContext.of(task))
        return (task.input,)


def _log_fields(task: ExecuteTask) -> dict[str, str]:
    return {"workflow_id": task.workflow_id, "task_id": task.task_id, "task_type": task.task_type}


def normalize_output(value: Any) -> Json:
    """A handler's return value as a task output: a dict as is, another value as ``{"result": v}``.

    ``None`` (a handler without a return statement) gives ``{}``. Raises TypeError when the output
    is not JSON-serializable (as orjson, which the codec uses, sees it).
    """
    if value is None:
        return {}
    output = value if isinstance(value, dict) else {"result": value}
    try:
        orjson.dumps(output)
    except TypeError as exc:
        raise TypeError(
            f"handler returned an output that is not JSON-serializable "
            f"({type(value).__name__}): {exc}"
        ) from exc
    return output


@dataclass(frozen=True)
class InProgress:
    """Returned by a handler: the task is not done; ask again in ``callback_after_seconds``.

    Conductor's IN_PROGRESS with callbackAfterSeconds: the engine records the progress
    ``output`` as a heartbeat and sends the same attempt to a worker again after the delay.
    """

    output: Json = None
    callback_after_seconds: int = 0


def outcome(task: ExecuteTask, value: Any, worker_id: str) -> TaskResult:
    """The result a handler's return value means: IN_PROGRESS for :class:`InProgress`."""
    if isinstance(value, InProgress):
        return TaskResult(
            workflow_id=task.workflow_id,
            task_id=task.task_id,
            attempt=task.attempt,
            status=ResultStatus.IN_PROGRESS,
            output=normalize_output(value.output),
            worker_id=worker_id,
            callback_after_seconds=value.callback_after_seconds,
        )
    return completed_result(task, normalize_output(value), worker_id)


def picked_up(task: ExecuteTask, worker_id: str) -> TaskResult:
    """IN_PROGRESS as a worker picks the task up (for tasks with a pollTimeoutSeconds)."""
    return TaskResult(
        workflow_id=task.workflow_id,
        task_id=task.task_id,
        attempt=task.attempt,
        status=ResultStatus.IN_PROGRESS,
        worker_id=worker_id,
    )


def completed_result(task: ExecuteTask, output: Json, worker_id: str) -> TaskResult:
    """COMPLETED with ``output`` (already normalised)."""
    return TaskResult(
        workflow_id=task.workflow_id,
        task_id=task.task_id,
        attempt=task.attempt,
        status=ResultStatus.COMPLETED,
        output=output,
        worker_id=worker_id,
    )


def _failure(task: ExecuteTask, error: Exception, worker_id: str) -> TaskResult:
    _log.warning(
        "task handler failed",
        **_log_fields(task),
        error_type=type(error).__name__,
        reason=str(error),
        exc_info=error,
    )
    return error_result(task, error, worker_id)


def error_result(task: ExecuteTask, error: BaseException, worker_id: str) -> TaskResult:
    """FAILED (or FAILED_WITH_TERMINAL_ERROR for a :class:`TerminalError`) naming ``error``."""
    error_type = type(error).__name__
    terminal = isinstance(error, TerminalError)
    return TaskResult(
        workflow_id=task.workflow_id,
        task_id=task.task_id,
        attempt=task.attempt,
        status=ResultStatus.FAILED_WITH_TERMINAL_ERROR if terminal else ResultStatus.FAILED,
        reason=str(error) or f"{error_type} raised with no message",
        error_type=error_type,
        worker_id=worker_id,
    )
