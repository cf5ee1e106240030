"""HUMAN tasks: who should answer, by when, and who gets the task when nobody answers in time.

A HUMAN task waits for a signal (the reviewer's answer). Its ``inputParameters`` may say, beside
whatever the reviewer is shown:

- ``assignee`` and ``group``: who should answer first;
- ``dueIn`` (a duration such as ``"2h"``) or ``dueAt`` (an instant): when the task is overdue;
- ``escalation``: a list of steps ``{"assignee", "group", "dueIn" | "dueAt"}``, in order.

When the task is overdue it goes to the next escalation step: a ``TaskReassigned`` event, after
which the task's output shows the current ``assignee``, ``group``, ``escalationLevel`` and
``dueAt`` (a step with no due time waits for ever). Overdue with no step left, the attempt times
out (``TaskTimedOut`` of kind ``OVERDUE``) and the review fails: the workflow fails, or goes on
if the task is ``optional``. Durations and instants take the WAIT task's forms.
"""

from __future__ import annotations

from typing import Any

from orchestrator.dsl.durations import parse_duration, parse_until
from orchestrator.engine.emitter import Emitter
from orchestrator.engine.records import TaskReassigned, TaskTimedOut
from orchestrator.engine.state import TaskState

__all__ = ["OVERDUE", "due_at", "escalate", "escalation_steps", "first_due"]

Json = Any
OVERDUE = "OVERDUE"


def due_at(now: int, spec: Json) -> int | None:
    """When a HUMAN task (or an escalation step) given ``spec`` is overdue; ValueError if bad."""
    if not isinstance(spec, dict):
        raise ValueError(f"an escalation step must be an object, not {spec!r}")
    due_in, until = spec.get("dueIn"), spec.get("dueAt")
    if due_in not in (None, "") and until not in (None, ""):
        raise ValueError("give dueIn or dueAt, not both")
    if due_in not in (None, ""):
        return now + parse_duration(str(due_in))
    if until not in (None, ""):
        return parse_until(str(until))
    return None


def escalation_steps(data: Json) -> list[Json]:
    """The ``escalation`` steps of a HUMAN task's input; ValueError if it is not a list."""
    steps = (data or {}).get("escalation") if isinstance(data, dict) else None
    if steps is None:
        return []
    if not isinstance(steps, list):
        raise ValueError(f"escalation must be a list of steps, not {steps!r}")
    return steps


def first_due(now: int, data: Json) -> int | None:
    """When a HUMAN task with input ``data`` is first overdue; ValueError naming what is wrong."""
    escalation_steps(data)
    return due_at(now, data if isinstance(data, dict) else {})


def escalate(em: Emitter, task: TaskState) -> None:
    """The task is overdue: hand it to the next escalation step, or time the attempt out."""
    current = task.output if isinstance(task.output, dict) else {}
    level = int(current.get("escalationLevel") or 0)
    holder = _who(current) if level else _who(task.input if isinstance(task.input, dict) else {})
    try:
        steps = escalation_steps(task.input)
        step = steps[level] if level < len(steps) else None
        due = due_at(em.now, step) if step is not None else None
    except ValueError as exc:
        _time_out(em, task, f"review overdue ({holder} did not answer) and escalation {exc}")
        return
    if step is None:
        _time_out(em, task, f"review overdue: {holder} did not answer in time")
        return
    em.emit(
        TaskReassigned,
        task_id=task.task_id,
        attempt=task.attempt,
        level=level + 1,
        assignee=_text(step.get("assignee")),
        group=_text(step.get("group")),
        due_at=due,
        reason=f"overdue: {holder} did not answer in time",
    )


def _time_out(em: Emitter, task: TaskState, reason: str) -> None:
    em.emit(
        TaskTimedOut,
        task_id=task.task_id,
        attempt=task.attempt,
        kind=OVERDUE,
        reason=reason,
        retrying=False,
    )


def _who(spec: dict[str, Json]) -> str:
    names = [str(spec[k]) for k in ("assignee", "group") if spec.get(k)]
    return " / ".join(names) if names else "nobody assigned"


def _text(value: Json) -> str | None:
    return None if value in (None, "") else str(value)
