"""HUMAN due times and escalation, and CONTINUE_AS_NEW, on the pure engine."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.dsl import parse_definition
from orchestrator.engine.records import (
    SignalForwarded,
    TaskReassigned,
    TaskStatus,
    TaskTimedOut,
    WorkflowStatus,
)
from orchestrator.engine.tasks import next_run_id
from orchestrator.errors import OrchestratorError
from tests.simulation import Simulation

Json = Any
HOUR_MS = 3_600_000


def wf(name: str, *tasks: dict[str, Json], **extra: Json) -> Any:
    """A definition from task dicts."""
    return parse_definition({"name": name, "tasks": list(tasks), **extra})


def review(**inputs: Json) -> dict[str, Json]:
    """A HUMAN task ``review`` with the given input."""
    return {
        "name": "review",
        "taskReferenceName": "review",
        "type": "HUMAN",
        "inputParameters": inputs,
    }


ESCALATING = review(
    assignee="alice",
    group="editors",
    dueIn="2h",
    escalation=[{"assignee": "bob", "dueIn": "1h"}, {"group": "chiefs", "dueIn": "30m"}],
)


def test_a_human_task_is_due_when_its_input_says() -> None:
    """dueIn sets the task's due time; without one the task waits for ever (no timer)."""
    sim = Simulation([wf("r", ESCALATING), wf("plain", review(assignee="alice"))])
    sim.start("r")
    assert sim.state().tasks["review"].wait_until == sim.now + 2 * HOUR_MS
    sim.start("plain", workflow_id="p")
    sim.run(advance_clock=True)
    assert sim.state("p").tasks["review"].wait_until is None
    assert sim.state("p").status is WorkflowStatus.RUNNING


def test_an_overdue_review_goes_to_the_next_person_and_then_fails() -> None:
    """Each due time passing hands the task on; past the last step the review times out."""
    sim = Simulation([wf("r", ESCALATING)])
    sim.start("r")
    started = sim.now
    sim.run(advance_clock=True)
    reassigned = [e for e in sim.events["wf"] if isinstance(e, TaskReassigned)]
    assert [(e.level, e.assignee, e.group) for e in reassigned] == [
        (1, "bob", None),
        (2, None, "chiefs"),
    ]
    assert reassigned[0].at == started + 2 * HOUR_MS
    assert reassigned[0].due_at == started + 3 * HOUR_MS
    assert reassigned[1].reason == "overdue: bob did not answer in time"
    [timed_out] = [e for e in sim.events["wf"] if isinstance(e, TaskTimedOut)]
    assert timed_out.kind == "OVERDUE"
    assert timed_out.at == started + 3 * HOUR_MS + 30 * 60_000
    assert "chiefs did not answer" in timed_out.reason
    state = sim.state()
    assert state.tasks["review"].status is TaskStatus.TIMED_OUT
    assert state.status is WorkflowStatus.FAILED


def test_the_escalated_assignee_answers_and_the_workflow_goes_on() -> None:
    """After one escalation the task shows its new assignee; a signal completes it."""
    definition = wf("r", ESCALATING, outputParameters={"ok": "${review.output.approved}"})
    sim = Simulation([definition])
    sim.start("r")
    sim.now += 2 * HOUR_MS
    sim.run(advance_clock=False)
    timers = sim._fire_next_timer()  # the first due time only
    assert timers
    sim.run()
    task = sim.state().tasks["review"]
    assert task.output == {
        "assignee": "bob",
        "group": None,
        "escalationLevel": 1,
        "dueAt": sim.now + HOUR_MS,
    }
    assert task.awaiting_signal
    sim.signal("wf", "review", {"approved": True})
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().output == {"ok": True}


def test_an_optional_overdue_review_lets_the_workflow_go_on() -> None:
    """Optional: the timed-out review does not fail the run."""
    task = review(assignee="alice", dueIn="10m") | {"optional": True}
    sim = Simulation([wf("r", task)])
    sim.start("r")
    sim.run(advance_clock=True)
    assert sim.state().tasks["review"].status is TaskStatus.TIMED_OUT
    assert sim.state().status is WorkflowStatus.COMPLETED


def test_a_due_time_computed_at_run_time_that_does_not_parse_fails_the_task() -> None:
    """An expression resolving to a bad duration fails the task, naming it."""
    sim = Simulation([wf("r", review(dueIn="${workflow.input.due}"))])
    sim.start("r", {"due": "soonish"})
    state = sim.state()
    assert state.status is WorkflowStatus.FAILED
    assert "HUMAN review" in (state.tasks["review"].reason or "")


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ({"dueIn": "later"}, "dueIn 'later' does not parse"),
        ({"dueIn": "1h", "dueAt": "2026-01-01"}, "give dueIn or dueAt, not both"),
        ({"escalation": "bob"}, "escalation must be a list"),
        ({"escalation": ["bob"]}, "an escalation step must be an object"),
        ({"escalation": [{"assignee": "bob", "dueIn": "1 fortnight"}]}, "does not parse"),
    ],
)
def test_bad_human_inputs_are_refused_at_registration(
    inputs: dict[str, Json], problem: str
) -> None:
    """A literal due time or escalation step that cannot work is a validation error."""
    with pytest.raises(OrchestratorError, match=problem):
        wf("r", review(**inputs))


# CONTINUE_AS_NEW ---------------------------------------------------------------------------------

SESSION = wf(
    "session",
    {
        "name": "turn",
        "taskReferenceName": "turn",
        "type": "WAIT",
    },
    {
        "name": "count",
        "taskReferenceName": "count",
        "type": "INLINE",
        "inputParameters": {
            "evaluatorType": "javascript",
            "expression": "$.turns + 1",
            "turns": "${workflow.input.turns}",
        },
    },
    {
        "name": "again",
        "taskReferenceName": "again",
        "type": "SWITCH",
        "evaluatorType": "javascript",
        "expression": "$.n < 3 ? 'more' : 'done'",
        "inputParameters": {"n": "${count.output.result}"},
        "decisionCases": {
            "more": [
                {
                    "name": "next",
                    "taskReferenceName": "next",
                    "type": "CONTINUE_AS_NEW",
                    "inputParameters": {"input": {"turns": "${count.output.result}"}},
                }
            ]
        },
    },
    outputParameters={"turns": "${count.output.result}"},
)


def test_next_run_ids_count_up_from_the_first_run() -> None:
    """The first successor is ~2; later ones count on from the suffix."""
    assert next_run_id("chat-1") == "chat-1~2"
    assert next_run_id("chat-1~2") == "chat-1~3"
    assert next_run_id("a~b~9") == "a~b~10"
    assert next_run_id("~5") == "~5~2"


def test_continue_as_new_starts_a_linked_run_with_the_carried_input() -> None:
    """Each run ends COMPLETED and names its successor, which starts with the given input."""
    sim = Simulation([SESSION])
    sim.start("session", {"turns": 0}, workflow_id="chat")
    sim.signal("chat", "turn", {"text": "hi"})
    first = sim.state("chat")
    assert first.status is WorkflowStatus.COMPLETED
    assert first.continued_as == "chat~2"
    assert first.output == {"turns": 1}
    assert first.tasks["next"].output == {"workflowId": "chat~2"}
    second = sim.state("chat~2")
    assert second.continued_from == "chat"
    assert second.input == {"turns": 1}
    assert second.definition == first.definition
    assert second.status is WorkflowStatus.RUNNING
    sim.signal("chat~2", "turn", {})
    sim.signal("chat~3", "turn", {})
    last = sim.state("chat~3")
    assert last.status is WorkflowStatus.COMPLETED
    assert last.continued_as is None
    assert last.output == {"turns": 3}


def test_a_signal_to_a_continued_run_is_forwarded_along_the_chain() -> None:
    """Signalling the first run's id reaches the run that waits now."""
    sim = Simulation([SESSION])
    sim.start("session", {"turns": 0}, workflow_id="chat")
    sim.signal("chat", "turn", {})
    sim.signal("chat", "turn", {"text": "second"})
    [forwarded] = [e for e in sim.events["chat"] if isinstance(e, SignalForwarded)]
    assert forwarded.to_workflow_id == "chat~2"
    assert sim.state("chat~2").tasks["turn"].output == {"text": "second"}
    assert sim.state("chat~3").status is WorkflowStatus.RUNNING
    sim.signal("chat", "turn", {"text": "third"})
    assert sim.state("chat~3").status is WorkflowStatus.COMPLETED
    assert sim.state("chat~3").tasks["turn"].output == {"text": "third"}


def test_a_continued_sub_workflow_reports_to_its_parent_only_at_the_end_of_the_chain() -> None:
    """The parent's SUB_WORKFLOW task completes with the last run's output."""
    parent = wf(
        "parent",
        {
            "name": "s",
            "taskReferenceName": "s",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "session"},
            "inputParameters": {"turns": 1},
        },
        outputParameters={"turns": "${s.output.turns}", "child": "${s.output.subWorkflowId}"},
    )
    sim = Simulation([SESSION, parent])
    sim.start("parent")
    [child] = [w for w in sim.states if w != "wf"]
    sim.signal(child, "turn", {})
    assert sim.state().status is WorkflowStatus.RUNNING
    sim.signal(child, "turn", {})
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().output == {"turns": 3, "child": f"{child}~2"}


def test_continue_as_new_with_an_input_that_is_no_object_fails_the_task() -> None:
    """The next run's input must be an object; a literal other value is refused up front."""
    with pytest.raises(OrchestratorError, match="input must be an object"):
        wf(
            "bad",
            {
                "name": "c",
                "taskReferenceName": "c",
                "type": "CONTINUE_AS_NEW",
                "inputParameters": {"input": [1, 2]},
            },
        )
    runtime = wf(
        "late",
        {
            "name": "c",
            "taskReferenceName": "c",
            "type": "CONTINUE_AS_NEW",
            "inputParameters": {"input": "${workflow.input.next}"},
        },
    )
    sim = Simulation([runtime])
    sim.start("late", {"next": [1]})
    assert sim.state().status is WorkflowStatus.FAILED
    assert "input must be an object" in (sim.state().tasks["c"].reason or "")
    assert "wf~2" not in sim.states


# Signals that come before their task waits -------------------------------------------------------

MESSAGE = {
    "name": "msg",
    "taskReferenceName": "msg",
    "type": "WAIT",
    "inputParameters": {"queueSignals": True},
}
WORK = {
    "name": "work",
    "taskReferenceName": "work",
    "type": "SIMPLE",
    "inputParameters": {"text": "${msg.output.text}"},
}

QUEUEING = wf(
    "inbox",
    {
        "name": "loop",
        "taskReferenceName": "loop",
        "type": "DO_WHILE",
        "loopCondition": "$.loop['iteration'] < 3",
        "loopOver": [
            MESSAGE,
            WORK,
        ],
    },
    {"name": "other", "taskReferenceName": "other", "type": "WAIT"},
)


def test_signals_that_come_while_the_run_is_busy_wait_for_their_task_in_order() -> None:
    """Messages sent while a worker task runs are queued and taken by the next WAITs."""
    sim = Simulation([QUEUEING], {"work": lambda d: {"did": d["text"]}}, manual={"work"})
    sim.start("inbox")
    sim.signal("wf", "msg", {"text": "one"})
    sim.signal("wf", "msg", {"text": "two"})
    sim.signal("wf", "msg", {"text": "three"})
    sim.signal("wf", "other", {"x": 1})
    kinds = sim.kinds()
    assert kinds.count("SignalQueued") == 2
    assert kinds[-1] == "RequestRejected"  # "other" does not queue signals
    assert len(sim.state().queued_signals) == 2
    while sim.commands:
        sim.submit(sim.execute(sim.commands.pop(0)))
    state = sim.state()
    assert state.status is WorkflowStatus.RUNNING  # now at "other"
    works = [t.output for t in state.tasks.values() if t.ref_name == "work"]
    assert works == [{"did": "one"}, {"did": "two"}, {"did": "three"}]
    assert state.queued_signals == []
    assert sim.kinds().count("SignalDequeued") == 2


def test_signals_still_queued_when_a_run_continues_go_to_the_successor() -> None:
    """A message queued in the old run is the first one the new run takes."""
    definition = wf(
        "relay",
        MESSAGE,
        WORK,
        {
            "name": "next",
            "taskReferenceName": "next",
            "type": "CONTINUE_AS_NEW",
            "inputParameters": {"input": {"last": "${work.output.did}"}},
        },
    )
    sim = Simulation([definition], {"work": lambda d: {"did": d["text"]}}, manual={"work"})
    sim.start("relay")
    sim.signal("wf", "msg", {"text": "one"})
    sim.signal("wf", "msg", {"text": "two"})
    sim.submit(sim.execute(sim.commands.pop(0)))
    assert sim.state().continued_as == "wf~2"
    successor = sim.state("wf~2")
    assert successor.input == {"last": "one"}
    assert successor.tasks["msg"].output == {"text": "two"}
    assert successor.queued_signals == []


def test_a_loop_condition_sees_variables_the_body_set() -> None:
    """DO_WHILE inputs are resolved again for each check (Conductor's behaviour)."""
    definition = wf(
        "until_done",
        {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "inputParameters": {"done": "${workflow.variables.done}"},
            "loopCondition": "!$.done && $.loop['iteration'] < 10",
            "loopOver": [
                {
                    "name": "mark",
                    "taskReferenceName": "mark",
                    "type": "SET_VARIABLE",
                    "inputParameters": {"done": "${workflow.input.stopAfterFirst}"},
                }
            ],
        },
        variables={"done": False},
    )
    sim = Simulation([definition])
    sim.start("until_done", {"stopAfterFirst": True})
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().tasks["loop"].output["iteration"] == 1
    sim.start("until_done", {"stopAfterFirst": False}, workflow_id="long")
    assert sim.state("long").tasks["loop"].output["iteration"] == 10
