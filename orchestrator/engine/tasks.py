"""Starting a task: resolve its input, then schedule it for a worker or carry it out at once.

Worker tasks (``WORKER_TYPES``: SIMPLE, HTTP, KAFKA_PUBLISH, EVENT, the LLM tasks; and DYNAMIC)
become a TaskScheduled whose command goes to ``tasks.<type>``. System tasks the engine can finish
on the spot (INLINE, JQ, SET_VARIABLE, NOOP, TERMINATE, START_WORKFLOW) are scheduled and
completed in one decision, with their result in the events. WAIT, HUMAN and SUB_WORKFLOW are
scheduled and wait. CONTINUE_AS_NEW ends the run and names its successor (see
:func:`next_run_id`), which the processor starts with the task's ``input``.
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.dsl.durations import parse_duration, parse_until
from orchestrator.dsl.expressions import resolve
from orchestrator.dsl.model import WORKER_TYPES, WorkflowTask
from orchestrator.engine.emitter import Emitter, context
from orchestrator.engine.human import first_due
from orchestrator.engine.records import (
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TaskSkipped,
    VariablesUpdated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowTerminated,
)
from orchestrator.engine.signals import take_queued_signal

Json = Any
INSTANT = frozenset({"INLINE", "LAMBDA", "JSON_JQ_TRANSFORM", "SET_VARIABLE", "NOOP"})


def child_workflow_id(workflow_id: str, task_id: str, attempt: int) -> str:
    """The id of the workflow a SUB_WORKFLOW or START_WORKFLOW task starts (deterministic)."""
    return f"{workflow_id}.{task_id}.{attempt}"


_RUN_SUFFIX = re.compile(r"^(?P<base>.+)~(?P<run>[0-9]+)$")


def next_run_id(workflow_id: str) -> str:
    """The id of the run a CONTINUE_AS_NEW task starts: ``<base>~2``, then ``~3``, and so on."""
    match = _RUN_SUFFIX.match(workflow_id)
    if match is None:
        return f"{workflow_id}~2"
    return f"{match['base']}~{int(match['run']) + 1}"


def start_task(em: Emitter, task: WorkflowTask, task_id: str, task_input: Json = None) -> None:
    """Schedule ``task`` as ``task_id`` and, for instant system tasks, finish it now."""
    data = resolve(task.inputParameters, context(em.current)) if task_input is None else task_input
    if task_id in em.current.skips:
        schedule_task(em, task, task_id, data)
        em.emit(
            TaskSkipped,
            task_id=task_id,
            attempt=em.current.tasks[task_id].attempt,
            output=em.current.skips[task_id],
        )
        return
    kind = task.type
    if kind in WORKER_TYPES or kind == "DYNAMIC":
        _schedule_worker(em, task, task_id, data)
    elif kind == "WAIT":
        _schedule_wait(em, task, task_id, data)
        _take_signal(em, task, task_id)
    elif kind == "HUMAN":
        _schedule_human(em, task, task_id, data)
        _take_signal(em, task, task_id)
    elif kind == "CONTINUE_AS_NEW":
        schedule_task(em, task, task_id, data)
        _continue_as_new(em, task_id, data)
    elif kind == "SUB_WORKFLOW":
        schedule_task(em, task, task_id, _sub_workflow_input(em, task, data))
    elif kind == "START_WORKFLOW":
        schedule_task(em, task, task_id, data)
        child = child_workflow_id(em.workflow_id, task_id, 1)
        complete_task(em, task_id, {"workflowId": child})
    elif kind == "TERMINATE":
        schedule_task(em, task, task_id, data)
        _terminate(em, task_id, data)
    elif kind in INSTANT:
        schedule_task(em, task, task_id, data)
        _run_instant(em, task, task_id, data)
    else:  # the operators the walker handles itself
        schedule_task(em, task, task_id, data)


def schedule_task(em: Emitter, task: WorkflowTask, task_id: str, data: Json, **extra: Any) -> None:
    """Emit the TaskScheduled of ``task`` (a system task unless ``extra`` says otherwise)."""
    fields: dict[str, Any] = {
        "task_id": task_id,
        "ref_name": task.taskReferenceName,
        "task_type": task.type,
        "attempt": em.current.retired.get(task_id, 0) + 1,
        "input": data,
        "worker": False,
        "optional": task.optional,
        "async_complete": task.asyncComplete,
    }
    em.emit(TaskScheduled, **(fields | extra))


def _schedule_worker(em: Emitter, task: WorkflowTask, task_id: str, data: Json) -> None:
    task_type = task.name if task.type == "SIMPLE" else task.type
    if task.type == "DYNAMIC":
        param = task.dynamicTaskNameParam or "taskToExecute"
        chosen = (data or {}).get(param)
        if not isinstance(chosen, str) or not chosen:
            schedule_task(em, task, task_id, data)
            fail_task(em, task_id, f"DYNAMIC task input {param!r} names no task type: {chosen!r}")
            return
        task_type = chosen
    if task.type == "EVENT":
        data = {**(data or {}), "sink": task.sink}
    definition = task.taskDefinition or em.env.definitions.task_def(task_type)
    delay = task.startDelay * 1000
    schedule_task(
        em,
        task,
        task_id,
        data,
        task_type=task_type,
        worker=True,
        dispatch_at=em.now + delay if delay else None,
        policy=definition.policy() if definition is not None else None,
    )


def _schedule_wait(em: Emitter, task: WorkflowTask, task_id: str, data: Json) -> None:
    data = data or {}
    try:
        if data.get("duration"):
            until: int | None = em.now + parse_duration(str(data["duration"]))
        elif data.get("until"):
            until = parse_until(str(data["until"]))
        else:
            until = None
    except ValueError as exc:
        schedule_task(em, task, task_id, data)
        fail_task(em, task_id, f"WAIT {task.taskReferenceName}: {exc}")
        return
    schedule_task(em, task, task_id, data, wait_until=until)


def _take_signal(em: Emitter, task: WorkflowTask, task_id: str) -> None:
    """A task that waits for a signal takes one kept for it, if it still waits."""
    if not em.current.tasks[task_id].status.terminal:
        take_queued_signal(em, task, task_id)


def _schedule_human(em: Emitter, task: WorkflowTask, task_id: str, data: Json) -> None:
    try:
        until = first_due(em.now, data)
    except ValueError as exc:
        schedule_task(em, task, task_id, data)
        fail_task(em, task_id, f"HUMAN {task.taskReferenceName}: {exc}")
        return
    schedule_task(em, task, task_id, data, wait_until=until)


def _continue_as_new(em: Emitter, task_id: str, data: Json) -> None:
    """End the run COMPLETED; the processor starts its successor with ``data["input"]``."""
    next_input = (data or {}).get("input", {})
    if not isinstance(next_input, dict):
        fail_task(em, task_id, f"CONTINUE_AS_NEW input must be an object, not {next_input!r}")
        return
    successor = next_run_id(em.workflow_id)
    complete_task(em, task_id, {"workflowId": successor})
    parameters = em.current.workflow_def.outputParameters
    output = resolve(parameters, context(em.current)) if parameters else {}
    em.emit(WorkflowCompleted, output=output, continued_as=successor, next_input=next_input)


def _sub_workflow_input(em: Emitter, task: WorkflowTask, data: Json) -> Json:
    params = task.subWorkflowParam
    names = (
        resolve({"name": params.name, "version": params.version}, context(em.current))
        if params
        else {}
    )
    info: dict[str, Json] = {"subWorkflowName": names.get("name")}
    if names.get("version") not in (None, ""):
        info["subWorkflowVersion"] = int(names["version"])
    if params is not None and params.workflowDefinition is not None:
        info["subWorkflowDefinition"] = params.workflowDefinition.to_json()
        info["subWorkflowName"] = params.workflowDefinition.name
    return {**(data or {}), **info}


def _run_instant(em: Emitter, task: WorkflowTask, task_id: str, data: Json) -> None:
    data = data or {}
    try:
        if task.type == "SET_VARIABLE":
            em.emit(VariablesUpdated, task_id=task_id, variables=data)
            output: Json = {}
        elif task.type == "NOOP":
            output = {}
        elif task.type == "JSON_JQ_TRANSFORM":
            results = em.env.scripts.jq(str(data.get("queryExpression", ".")), data)
            output = {"result": results[0] if results else None, "resultList": results}
        else:  # INLINE, LAMBDA
            expression = data.get("expression") or ""
            if task.type == "LAMBDA":  # Conductor runs a LAMBDA's script as a function body
                expression = f"(function () {{ {data.get('scriptExpression') or ''} }})()"
            output = {"result": em.env.scripts.javascript(str(expression), data)}
    except Exception as exc:  # noqa: BLE001 - a script's failure is the task's, never the engine's
        fail_task(em, task_id, f"{task.type} {task.taskReferenceName}: {exc}")
        return
    complete_task(em, task_id, output)


def _terminate(em: Emitter, task_id: str, data: Json) -> None:
    data = data or {}
    status = str(data.get("terminationStatus", "COMPLETED")).upper()
    output = data.get("workflowOutput", {})
    reason = str(data.get("terminationReason") or f"terminated by task {task_id}")
    complete_task(em, task_id, {"terminationStatus": status, "output": output})
    if status == "COMPLETED":
        em.emit(WorkflowCompleted, output=output)
    elif status == "FAILED":
        em.emit(WorkflowFailed, reason=reason, task_id=task_id, output=output)
    else:
        em.emit(WorkflowTerminated, reason=reason, output=output)


def complete_task(em: Emitter, task_id: str, output: Json) -> None:
    """Emit the TaskCompleted of the current attempt of ``task_id``."""
    em.emit(
        TaskCompleted, task_id=task_id, attempt=em.current.tasks[task_id].attempt, output=output
    )


def fail_task(em: Emitter, task_id: str, reason: str) -> None:
    """Emit a terminal TaskFailed of the current attempt of ``task_id``."""
    em.emit(
        TaskFailed,
        task_id=task_id,
        attempt=em.current.tasks[task_id].attempt,
        reason=reason,
        terminal=True,
    )
