"""The walker: from the definition tree and the state, start whatever can start next.

``advance`` walks the workflow's task list after every change. Each item reports a ``Flow``:
DONE (the next item may start), RUNNING (something is in flight; the list waits) or FAILED.
Operators recurse: a SWITCH walks the branch its recorded decision chose, a FORK walks every
arm (the JOIN after it waits), a DO_WHILE walks the current iteration's body under the task id
suffix ``__<iteration>``. Decisions (cases, forked tasks, loop conditions) are computed once,
written into events, and read back from the state on every later walk.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from orchestrator.dsl.expressions import resolve
from orchestrator.dsl.model import WorkflowTask, walk_tasks
from orchestrator.engine.emitter import Emitter, context
from orchestrator.engine.faults import compensation_task, fail_workflow, start_compensation
from orchestrator.engine.records import (
    LoopIterated,
    TaskStatus,
    WorkflowCompleted,
    WorkflowStatus,
)
from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.engine.tasks import complete_task, fail_task, schedule_task, start_task

Json = Any


class Flow(Enum):
    """What a walked item tells the list it is in."""

    DONE = "done"
    RUNNING = "running"
    FAILED = "failed"


def advance(em: Emitter) -> None:
    """Start what can start; complete or fail the workflow when its task list ends.

    A paused workflow starts nothing; a compensating one runs its compensations instead.
    """
    state = em.current
    if state.status is WorkflowStatus.COMPENSATING:
        _compensate(em)
        return
    if state.status is not WorkflowStatus.RUNNING:
        return
    flow = walk_list(em, state.workflow_def.tasks, "")
    state = em.current
    if state.status is not WorkflowStatus.RUNNING:
        return
    if flow is Flow.DONE:
        em.emit(WorkflowCompleted, output=workflow_output(state))
    elif flow is Flow.FAILED:
        task_id, reason = em.failure or (None, "a task failed")
        if start_compensation(em, reason, task_id):
            _compensate(em)
        else:
            fail_workflow(em, reason, task_id)


def _compensate(em: Emitter) -> None:
    """Run the compensation steps one by one; end FAILED, or COMPENSATION_FAILED if one fails."""
    state = em.current
    done: list[str] = []
    for step in state.compensation:
        task_id = step["task_id"]
        if task_id not in em.current.tasks:
            start_task(em, compensation_task(step), task_id)
        task = em.current.tasks[task_id]
        if task.failed:
            summary = {"steps": done, "failed": task_id, "reason": task.reason}
            fail_workflow(
                em,
                state.reason or "compensation failed",
                state.failed_task_id,
                compensation=summary,
            )
            return
        if not task.succeeded:
            return
        done.append(task_id)
    fail_workflow(
        em,
        state.reason or "a task failed",
        state.failed_task_id,
        compensation={"steps": done, "failed": None},
    )


def walk_list(em: Emitter, tasks: list[WorkflowTask], scope: str) -> Flow:
    """Walk a task list in order until an item is not DONE."""
    previous: WorkflowTask | None = None
    for task in tasks:
        flow = walk_item(em, task, scope, previous)
        if flow is not Flow.DONE or em.current.status.terminal:
            return flow
        previous = task
    return Flow.DONE


def walk_item(em: Emitter, task: WorkflowTask, scope: str, previous: WorkflowTask | None) -> Flow:
    """Walk one task (an operator recurses into its lists)."""
    match task.type:
        case "SWITCH" | "DECISION":
            return _switch(em, task, scope)
        case "FORK_JOIN" | "FORK":
            return _fork(em, task, scope)
        case "FORK_JOIN_DYNAMIC":
            return _dynamic_fork(em, task, scope)
        case "JOIN":
            return _join(em, task, scope, previous)
        case "DO_WHILE":
            return _loop(em, task, scope)
        case _:
            return _leaf(em, task, scope)


def _leaf(em: Emitter, task: WorkflowTask, scope: str) -> Flow:
    task_id = task.taskReferenceName + scope
    if task_id not in em.current.tasks:
        start_task(em, task, task_id)
    return leaf_flow(em, em.current.tasks[task_id])


def leaf_flow(em: Emitter, task: TaskState) -> Flow:
    """DONE when the task succeeded (or failed but is optional), FAILED, or RUNNING."""
    if task.succeeded:
        return Flow.DONE
    if task.failed:
        verb = "timed out" if task.status is TaskStatus.TIMED_OUT else "failed"
        em.fail(task.task_id, f"task {task.ref_name!r} {verb}: {task.reason}")
        return Flow.FAILED
    return Flow.RUNNING


# SWITCH / DECISION ------------------------------------------------------------------------------


def _switch(em: Emitter, task: WorkflowTask, scope: str) -> Flow:
    task_id = task.taskReferenceName + scope
    if task_id not in em.current.tasks:
        data = resolve(task.inputParameters, context(em.current))
        schedule_task(em, task, task_id, data)
        try:
            case = _case(em, task, data or {})
        except Exception as exc:  # noqa: BLE001 - a bad expression fails the task, not the engine
            fail_task(em, task_id, f"{task.type} {task.taskReferenceName}: {exc}")
        else:
            complete_task(em, task_id, {"evaluationResult": [case], "selectedCase": case})
    state = em.current.tasks[task_id]
    if state.status is not TaskStatus.COMPLETED:
        return leaf_flow(em, state)
    case = state.output["evaluationResult"][0]
    return walk_list(em, task.decisionCases.get(case, task.defaultCase), scope)


def _case(em: Emitter, task: WorkflowTask, data: dict[str, Json]) -> str:
    if task.type == "DECISION":
        if task.caseExpression:
            value = em.env.scripts.javascript(task.caseExpression, data)
        else:
            value = data.get(task.caseValueParam or "")
    elif (task.evaluatorType or "value-param") == "value-param":
        value = data.get(task.expression or "")
    else:
        value = em.env.scripts.javascript(task.expression or "", data)
    return _case_text(value)


def _case_text(value: Json) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# FORK_JOIN / FORK_JOIN_DYNAMIC / JOIN -----------------------------------------------------------


def _fork(em: Emitter, task: WorkflowTask, scope: str) -> Flow:
    task_id = task.taskReferenceName + scope
    if task_id not in em.current.tasks:
        schedule_task(em, task, task_id, {})
        complete_task(em, task_id, {})
    flows = [walk_list(em, arm, scope) for arm in task.forkTasks]
    return Flow.FAILED if Flow.FAILED in flows else Flow.DONE


def _dynamic_fork(em: Emitter, task: WorkflowTask, scope: str) -> Flow:
    task_id = task.taskReferenceName + scope
    if task_id not in em.current.tasks:
        data = resolve(task.inputParameters, context(em.current)) or {}
        schedule_task(em, task, task_id, data)
        try:
            forked = _forked_tasks(task, data)
        except (ValueError, TypeError) as exc:
            fail_task(em, task_id, f"FORK_JOIN_DYNAMIC {task.taskReferenceName}: {exc}")
        else:
            refs = [t["taskReferenceName"] for t in forked]
            complete_task(em, task_id, {"forkedTasks": refs, "forkedTaskDefs": forked})
    state = em.current.tasks[task_id]
    if state.status is not TaskStatus.COMPLETED:
        return leaf_flow(em, state)
    flows = [walk_item(em, arm, scope, None) for arm in dynamic_arms(em.current, state)]
    return Flow.FAILED if Flow.FAILED in flows else Flow.DONE


def _forked_tasks(task: WorkflowTask, data: dict[str, Json]) -> list[dict[str, Json]]:
    """The dynamic fork's tasks as WorkflowTask JSON, their inputs filled in (validated)."""
    if task.dynamicForkTasksParam:
        tasks = data.get(task.dynamicForkTasksParam)
        inputs = data.get(task.dynamicForkTasksInputParamName or "", {}) or {}
        if not isinstance(tasks, list) or not isinstance(inputs, dict):
            raise ValueError(f"input {task.dynamicForkTasksParam!r} must be a list of tasks")
        forked = [
            {
                **t,
                "inputParameters": inputs.get(
                    t.get("taskReferenceName"), t.get("inputParameters", {})
                ),
            }
            for t in tasks
        ]
    else:
        name, inputs = data.get("forkTaskName"), data.get("forkTaskInputs")
        if not isinstance(name, str) or not isinstance(inputs, list):
            raise ValueError("needs dynamicForkTasksParam, or forkTaskName and forkTaskInputs")
        forked = [
            {"name": name, "taskReferenceName": f"{name}_{i}", "inputParameters": item}
            for i, item in enumerate(inputs)
        ]
    for item in forked:
        WorkflowTask.model_validate(item)
    return forked


def dynamic_arms(state: WorkflowState, fork: TaskState) -> list[WorkflowTask]:
    """The parsed tasks a completed dynamic fork spawned (parsed once per process)."""
    return state.memo(  # type: ignore[no-any-return]
        f"arms/{fork.task_id}/{fork.attempt}",
        lambda: [WorkflowTask.model_validate(t) for t in fork.output["forkedTaskDefs"]],
    )


def _join(em: Emitter, task: WorkflowTask, scope: str, previous: WorkflowTask | None) -> Flow:
    task_id = task.taskReferenceName + scope
    if task_id not in em.current.tasks:
        schedule_task(em, task, task_id, {})
    join = em.current.tasks[task_id]
    if join.status.terminal:
        return leaf_flow(em, join)
    outputs: dict[str, Json] = {}
    for ref in _join_refs(em.current, task, previous, scope):
        awaited = em.current.tasks.get(ref + scope)
        if awaited is None or not awaited.status.terminal:
            return Flow.RUNNING
        if not awaited.succeeded:
            fail_task(em, task_id, f"joined task {ref!r} failed: {awaited.reason}")
            return leaf_flow(em, em.current.tasks[task_id])
        outputs[ref] = awaited.output
    complete_task(em, task_id, outputs)
    return Flow.DONE


def _join_refs(
    state: WorkflowState, task: WorkflowTask, previous: WorkflowTask | None, scope: str
) -> list[str]:
    if task.joinOn:
        return task.joinOn
    if previous is not None and previous.type == "FORK_JOIN_DYNAMIC":
        fork = state.tasks.get(previous.taskReferenceName + scope)
        return list(fork.output.get("forkedTasks", [])) if fork and fork.output else []
    if previous is not None and previous.type in ("FORK_JOIN", "FORK"):
        return [arm[-1].taskReferenceName for arm in previous.forkTasks if arm]
    return []


# DO_WHILE ---------------------------------------------------------------------------------------


def _loop(em: Emitter, task: WorkflowTask, scope: str) -> Flow:
    task_id = task.taskReferenceName + scope
    if task_id not in em.current.tasks:
        schedule_task(em, task, task_id, resolve(task.inputParameters, context(em.current)) or {})
    while True:
        loop = em.current.tasks[task_id]
        if loop.status.terminal:
            return leaf_flow(em, loop)
        items = (loop.input or {}).get("items")
        if isinstance(items, list) and not items:
            complete_task(em, task_id, loop.output)
            return Flow.DONE
        iteration = int((loop.output or {}).get("iteration", 0)) + 1
        body_scope = f"{scope}__{iteration}"
        flow = walk_list(em, task.loopOver, body_scope)
        if flow is Flow.FAILED:
            reason = em.failure[1] if em.failure else "an iteration failed"
            fail_task(em, task_id, f"iteration {iteration}: {reason}")
            return leaf_flow(em, em.current.tasks[task_id])
        if flow is Flow.RUNNING or em.current.status.terminal:
            return flow
        _finish_iteration(em, task, task_id, iteration, body_scope)


def _finish_iteration(
    em: Emitter, task: WorkflowTask, task_id: str, iteration: int, body_scope: str
) -> None:
    loop = em.current.tasks[task_id]
    body = {
        t.taskReferenceName: em.current.tasks[t.taskReferenceName + body_scope].output
        for t in walk_tasks(task.loopOver)
        if t.taskReferenceName + body_scope in em.current.tasks
    }
    items = (loop.input or {}).get("items")
    try:
        if isinstance(items, list):
            again = iteration < len(items)
        else:
            # The inputs are resolved again for each check, as Conductor does, so a condition
            # on ``${workflow.variables.x}`` sees what the body has set.
            parameters = task.inputParameters
            inputs = resolve(parameters, context(em.current)) if parameters else {}
            bindings = {
                **(loop.input or {}),
                **(inputs if isinstance(inputs, dict) else {}),
                **body,
                task.taskReferenceName: {**(loop.output or {}), "iteration": iteration},
            }
            again = bool(em.env.scripts.javascript(task.loopCondition or "false", bindings))
    except Exception as exc:  # noqa: BLE001 - a bad condition fails the loop, not the engine
        fail_task(em, task_id, f"DO_WHILE {task.taskReferenceName} condition: {exc}")
        return
    em.emit(LoopIterated, task_id=task_id, iteration=iteration, output=body, again=again)
    if not again:
        complete_task(em, task_id, em.current.tasks[task_id].output)


def workflow_output(state: WorkflowState) -> Json:
    """The workflow's output: its outputParameters, or the last top-level task's output."""
    definition = state.workflow_def
    if definition.outputParameters:
        return resolve(definition.outputParameters, context(state))
    last = state.tasks.get(definition.tasks[-1].taskReferenceName)
    return last.output if last is not None and last.output is not None else {}
