"""Any LangChain :class:`Runnable` as the handler of a task type on a :class:`Worker`.

How a failure maps to the task's result (the TaskDef's retries apply to a failed attempt):

- a ``ValueError`` (pydantic's ``ValidationError`` among them: a tool's or a model's argument
  check) or a missing ``input_key`` means the input is wrong, and the same input fails again: the
  task fails for good (:class:`RunnableInputError`, a :class:`TerminalError`);
- an ``OutputParserException`` is a ``ValueError`` about the model's reply, not the input, and
  another attempt may get a better reply: the attempt fails;
- a :class:`TerminalError` raised inside the runnable fails the task for good as it is;
- an output with no JSON form fails the task for good (:class:`RunnableOutputError`);
- any other exception (a timeout, a refused connection, a provider's 429 or 5xx) fails the
  attempt, named by its type and message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.runnables import Runnable, RunnableConfig

from orchestrator.errors import TerminalError
from orchestrator.worker import TaskContext, Worker
from workers.langchain.convert import to_json

__all__ = ["RunnableInputError", "RunnableTask", "runnable_task"]

Json = Any
RunnableTask = Callable[[dict[str, Json], TaskContext], Awaitable[dict[str, Json]]]


class RunnableInputError(TerminalError):
    """A runnable refused the task's input (a ValueError, or the input key is missing)."""


def runnable_task(
    worker: Worker,
    task_type: str,
    runnable: Runnable[Any, Any],
    *,
    input_key: str | None = None,
    output_key: str = "output",
) -> RunnableTask:
    """Register ``runnable`` on ``worker`` as the handler of ``task_type``; return the handler.

    The runnable gets the task input (a dict), or its ``input_key`` item, through ``ainvoke``
    (a sync runnable runs on a thread); the task output is ``{output_key: <the result as
    JSON>}`` (:func:`workers.langchain.convert.to_json`). The run is named after the task type
    and carries the workflow id, task id and attempt as metadata, so a LangChain tracer shows
    where it came from. Failures map as the module docstring says.
    """

    async def handle(task_input: dict[str, Json], ctx: TaskContext) -> dict[str, Json]:
        argument = _argument(task_input, input_key)
        try:
            result = await runnable.ainvoke(argument, config=_config(ctx))
        except (TerminalError, OutputParserException):
            raise
        except ValueError as exc:
            raise RunnableInputError(f"{type(exc).__name__}: {exc}") from exc
        return {output_key: to_json(result)}

    handle.__qualname__ = f"runnable_task[{task_type}]"
    worker.task(task_type)(handle)
    return handle


def _argument(task_input: dict[str, Json], input_key: str | None) -> Json:
    if input_key is None:
        return task_input
    if input_key not in task_input:
        raise RunnableInputError(f"the task input has no {input_key!r} for the runnable")
    return task_input[input_key]


def _config(ctx: TaskContext) -> RunnableConfig:
    return RunnableConfig(
        run_name=ctx.task_type,
        tags=["orchestrator"],
        metadata={
            "workflow_id": ctx.workflow_id,
            "workflow_name": ctx.workflow_name,
            "task_id": ctx.task_id,
            "task_ref": ctx.ref_name,
            "attempt": ctx.attempt,
        },
    )
