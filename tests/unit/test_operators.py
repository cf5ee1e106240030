"""The workflow language, operator by operator and combined, on the pure engine."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.dsl import parse_definition
from orchestrator.engine.records import TaskStatus, WorkflowStatus
from tests.simulation import Simulation

Json = Any


def wf(name: str, *tasks: dict[str, Json], **extra: Json) -> Any:
    """A definition from task dicts."""
    return parse_definition({"name": name, "tasks": list(tasks), **extra})


def simple(ref: str, name: str = "echo", **inputs: Json) -> dict[str, Json]:
    """A SIMPLE task."""
    return {"name": name, "taskReferenceName": ref, "type": "SIMPLE", "inputParameters": inputs}


def echo(data: dict[str, Json]) -> dict[str, Json]:
    """A worker returning its input."""
    return dict(data)


def add(data: dict[str, Json]) -> dict[str, Json]:
    """A worker adding one to ``n``."""
    return {"n": int(data.get("n") or 0) + 1}


WORKERS = {"echo": echo, "add": add}


def test_switch_value_param_takes_the_matching_case() -> None:
    """SWITCH value-param runs the case its input names and records the choice."""
    definition = wf(
        "sw",
        {
            "name": "route",
            "taskReferenceName": "route",
            "type": "SWITCH",
            "evaluatorType": "value-param",
            "expression": "kind",
            "inputParameters": {"kind": "${workflow.input.kind}"},
            "decisionCases": {"a": [simple("in_a", v="A")], "b": [simple("in_b", v="B")]},
            "defaultCase": [simple("in_default", v="D")],
        },
        outputParameters={
            "a": "${in_a.output.v}",
            "b": "${in_b.output.v}",
            "d": "${in_default.output.v}",
        },
    )
    sim = Simulation([definition], WORKERS)
    sim.start("sw", {"kind": "b"})
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().output == {"a": None, "b": "B", "d": None}
    assert sim.state().tasks["route"].output["evaluationResult"] == ["b"]
    sim.start("sw", {"kind": "zzz"}, workflow_id="wf2")
    assert sim.state("wf2").output["d"] == "D"


def test_switch_javascript_and_legacy_decision() -> None:
    """SWITCH with a JavaScript expression and DECISION with caseExpression both route."""
    definition = wf(
        "js",
        {
            "name": "s",
            "taskReferenceName": "s",
            "type": "SWITCH",
            "evaluatorType": "javascript",
            "expression": "$.amount > 100 ? 'big' : 'small'",
            "inputParameters": {"amount": "${workflow.input.amount}"},
            "decisionCases": {"big": [simple("big")], "small": [simple("small")]},
        },
        {
            "name": "d",
            "taskReferenceName": "d",
            "type": "DECISION",
            "caseExpression": "$.flag ? 'yes' : 'no'",
            "inputParameters": {"flag": "${workflow.input.flag}"},
            "decisionCases": {"yes": [simple("said_yes")]},
            "defaultCase": [simple("said_no")],
        },
    )
    sim = Simulation([definition], WORKERS)
    sim.start("js", {"amount": 250, "flag": False})
    refs = {task.ref_name for task in sim.state().tasks.values()}
    assert {"big", "said_no"} <= refs
    assert not {"small", "said_yes"} & refs


def test_fork_join_runs_arms_in_parallel_and_joins_outputs() -> None:
    """FORK_JOIN schedules every arm before any completes; JOIN collects the joinOn outputs."""
    definition = wf(
        "fork",
        {
            "name": "f",
            "taskReferenceName": "f",
            "type": "FORK_JOIN",
            "forkTasks": [
                [simple("a1", v=1), simple("a2", v="${a1.output.v}")],
                [simple("b1", v=2)],
            ],
        },
        {"name": "j", "taskReferenceName": "j", "type": "JOIN", "joinOn": ["a2", "b1"]},
        simple("after", got="${j.output}"),
    )
    sim = Simulation([definition], WORKERS, manual={"echo"})
    sim.start("fork")
    assert {c.task_id for c in sim.commands} == {"a1", "b1"}
    while sim.commands:
        sim.submit(sim.execute(sim.commands.pop(0)))
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().tasks["after"].input == {"got": {"a2": {"v": 1}, "b1": {"v": 2}}}


def test_dynamic_fork_spawns_the_recorded_tasks() -> None:
    """FORK_JOIN_DYNAMIC forks the tasks its input lists; the JOIN waits for all of them."""
    definition = wf(
        "dyn",
        {
            "name": "df",
            "taskReferenceName": "df",
            "type": "FORK_JOIN_DYNAMIC",
            "dynamicForkTasksParam": "tasks",
            "dynamicForkTasksInputParamName": "inputs",
            "inputParameters": {
                "tasks": "${workflow.input.tasks}",
                "inputs": "${workflow.input.inputs}",
            },
        },
        {"name": "join", "taskReferenceName": "join", "type": "JOIN"},
    )
    tasks = [{"name": "add", "taskReferenceName": f"t{i}"} for i in range(5)]
    inputs = {f"t{i}": {"n": i * 10} for i in range(5)}
    sim = Simulation([definition], WORKERS)
    sim.start("dyn", {"tasks": tasks, "inputs": inputs})
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().output == {f"t{i}": {"n": i * 10 + 1} for i in range(5)}
    assert sim.state().tasks["df"].output["forkedTasks"] == [f"t{i}" for i in range(5)]


def test_dynamic_fork_by_task_name_and_inputs() -> None:
    """The forkTaskName / forkTaskInputs style forks one task per input."""
    definition = wf(
        "dyn2",
        {
            "name": "df",
            "taskReferenceName": "df",
            "type": "FORK_JOIN_DYNAMIC",
            "inputParameters": {"forkTaskName": "add", "forkTaskInputs": "${workflow.input.items}"},
        },
        {"name": "join", "taskReferenceName": "join", "type": "JOIN"},
    )
    sim = Simulation([definition], WORKERS)
    sim.start("dyn2", {"items": [{"n": 1}, {"n": 2}, {"n": 3}]})
    assert sim.state().output == {"add_0": {"n": 2}, "add_1": {"n": 3}, "add_2": {"n": 4}}


def test_do_while_repeats_until_the_condition_fails() -> None:
    """DO_WHILE runs its body, keys iteration outputs by number, and stops on loopCondition."""
    definition = wf(
        "loop",
        {
            "name": "l",
            "taskReferenceName": "l",
            "type": "DO_WHILE",
            "loopCondition": "$.l['iteration'] < 3",
            "loopOver": [simple("step", "add", n="${workflow.input.start}")],
        },
    )
    sim = Simulation([definition], WORKERS)
    sim.start("loop", {"start": 5})
    loop = sim.state().tasks["l"]
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert loop.output["iteration"] == 3
    assert loop.output["1"] == {"step": {"n": 6}}
    assert {"step__1", "step__2", "step__3"} <= set(sim.state().tasks)


def test_do_while_items_iterates_a_list() -> None:
    """DO_WHILE with items runs once per item, exposing the item to the body."""
    definition = wf(
        "items",
        {
            "name": "l",
            "taskReferenceName": "l",
            "type": "DO_WHILE",
            "inputParameters": {"items": "${workflow.input.things}"},
            "loopOver": [simple("use", "echo", item="${l.output.item}", index="${l.output.index}")],
        },
    )
    sim = Simulation([definition], WORKERS)
    sim.start("items", {"things": ["x", "y", "z"]})
    loop = sim.state().tasks["l"]
    assert loop.output["iteration"] == 3
    assert [loop.output[str(i)]["use"]["item"] for i in (1, 2, 3)] == ["x", "y", "z"]


def test_sub_workflow_waits_for_the_child_and_takes_its_output() -> None:
    """SUB_WORKFLOW starts the child with a parent link; the parent continues with its output."""
    child = wf(
        "child",
        simple("c", "add", n="${workflow.input.n}"),
        outputParameters={"n": "${c.output.n}"},
    )
    parent = wf(
        "parent",
        {
            "name": "sub",
            "taskReferenceName": "sub",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "child"},
            "inputParameters": {"n": "${workflow.input.n}"},
        },
        simple("after", "add", n="${sub.output.n}"),
    )
    sim = Simulation([child, parent], WORKERS)
    sim.start("parent", {"n": 1})
    child_id = sim.state().tasks["sub"].output["subWorkflowId"]
    assert sim.state(child_id).parent == {"workflowId": "wf", "taskId": "sub", "attempt": 1}
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().tasks["after"].output == {"n": 3}


def test_sub_workflow_failure_and_termination_propagate() -> None:
    """A failing child fails the parent; terminating the parent terminates a running child."""

    def boom(data: dict[str, Json]) -> dict[str, Json]:
        raise ValueError("child broke")

    child = wf("bad_child", simple("c", "boom"))
    waiting = wf("slow_child", {"name": "h", "taskReferenceName": "h", "type": "HUMAN"})
    parent = wf(
        "p",
        {
            "name": "s",
            "taskReferenceName": "s",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "${workflow.input.child}"},
        },
    )
    parent = wf(
        "p",
        {
            "name": "s",
            "taskReferenceName": "s",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "bad_child"},
        },
    )
    parent2 = wf(
        "p2",
        {
            "name": "s",
            "taskReferenceName": "s",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "slow_child"},
        },
    )
    sim = Simulation([child, waiting, parent, parent2], {"boom": boom})
    sim.start("p")
    assert sim.state().status is WorkflowStatus.FAILED
    assert "child broke" in (sim.state().reason or "")
    sim.start("p2", workflow_id="wf2")
    child_id = "wf2.s.1"
    assert sim.state(child_id).status is WorkflowStatus.RUNNING
    sim.terminate("wf2")
    assert sim.state(child_id).status is WorkflowStatus.TERMINATED


def test_inline_jq_set_variable_noop() -> None:
    """INLINE, JSON_JQ_TRANSFORM, SET_VARIABLE and NOOP run inside the engine."""
    definition = wf(
        "sys",
        {
            "name": "calc",
            "taskReferenceName": "calc",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "a": "${workflow.input.a}",
                "expression": "(function(){ return {sum: $.a + 1}; })()",
            },
        },
        {
            "name": "jq",
            "taskReferenceName": "jq",
            "type": "JSON_JQ_TRANSFORM",
            "inputParameters": {
                "items": "${workflow.input.items}",
                "queryExpression": "[.items[] | .x * 2]",
            },
        },
        {
            "name": "set",
            "taskReferenceName": "set",
            "type": "SET_VARIABLE",
            "inputParameters": {"total": "${calc.output.result.sum}"},
        },
        {"name": "nothing", "taskReferenceName": "nothing", "type": "NOOP"},
        outputParameters={"total": "${workflow.variables.total}", "doubled": "${jq.output.result}"},
    )
    sim = Simulation([definition])
    sim.start("sys", {"a": 41, "items": [{"x": 1}, {"x": 2}]})
    assert sim.state().output == {"total": 42, "doubled": [2, 4]}


def test_inline_script_that_loops_forever_fails_the_task_not_the_engine() -> None:
    """A runaway script fails its task with a clear reason; the workflow fails, nothing hangs."""
    definition = wf(
        "spin",
        {
            "name": "spin",
            "taskReferenceName": "spin",
            "type": "INLINE",
            "inputParameters": {"evaluatorType": "javascript", "expression": "while(true){}"},
        },
    )
    sim = Simulation([definition])
    sim.start("spin")
    assert sim.state().status is WorkflowStatus.FAILED
    assert "longer than" in (sim.state().tasks["spin"].reason or "")


def test_terminate_ends_the_workflow_with_its_status_and_output() -> None:
    """TERMINATE ends the run with terminationStatus and workflowOutput; later tasks never run."""
    definition = wf(
        "term",
        {
            "name": "t",
            "taskReferenceName": "t",
            "type": "TERMINATE",
            "inputParameters": {
                "terminationStatus": "FAILED",
                "workflowOutput": {"why": "${workflow.input.why}"},
                "terminationReason": "no stock",
            },
        },
        simple("never"),
    )
    sim = Simulation([definition], WORKERS)
    sim.start("term", {"why": "x"})
    assert sim.state().status is WorkflowStatus.FAILED
    assert sim.state().output == {"why": "x"}
    assert "never" not in sim.state().tasks


def test_wait_duration_fires_on_the_timer_and_human_on_a_signal() -> None:
    """WAIT with a duration completes on its timer; HUMAN completes with the signal's output."""
    definition = wf(
        "waits",
        {
            "name": "w",
            "taskReferenceName": "w",
            "type": "WAIT",
            "inputParameters": {"duration": "2 days"},
        },
        {"name": "approve", "taskReferenceName": "approve", "type": "HUMAN"},
        outputParameters={"ok": "${approve.output.approved}"},
    )
    sim = Simulation([definition])
    sim.start("waits")
    assert sim.state().tasks["w"].wait_until == sim.now + 2 * 86_400_000
    sim.run(advance_clock=True)
    assert sim.state().tasks["w"].status is TaskStatus.COMPLETED
    assert sim.state().tasks["approve"].status is TaskStatus.SCHEDULED
    sim.signal("wf", "approve", {"approved": True})
    assert sim.state().output == {"ok": True}


def test_a_signal_for_a_task_that_is_not_waiting_is_rejected_once_recorded() -> None:
    """Signals for unknown, worker-run or finished tasks are rejected; none applies twice."""
    definition = wf("sig", {"name": "h", "taskReferenceName": "h", "type": "HUMAN"}, simple("w"))
    sim = Simulation([definition], WORKERS, manual={"echo"})
    sim.start("sig")
    sim.signal("wf", "nope")
    sim.signal("wf", "h", {"x": 1})
    sim.signal("wf", "h", {"x": 2})
    sim.signal("wf", "w", {"x": 3})
    rejected = [e for e in sim.events["wf"] if type(e).__name__ == "RequestRejected"]
    assert len(rejected) == 3
    assert "no task 'nope'" in rejected[0].reason
    assert "already COMPLETED" in rejected[1].reason
    assert "not waiting for a signal" in rejected[2].reason
    assert sim.state().tasks["h"].output == {"x": 1}


def test_start_workflow_fires_and_forgets() -> None:
    """START_WORKFLOW starts another workflow and completes at once with its id."""
    other = wf("other", simple("o", "add", n=1))
    definition = wf(
        "starter",
        {
            "name": "sw",
            "taskReferenceName": "sw",
            "type": "START_WORKFLOW",
            "inputParameters": {"startWorkflow": {"name": "other", "input": {}}},
        },
    )
    sim = Simulation([other, definition], WORKERS)
    sim.start("starter")
    started = sim.state().tasks["sw"].output["workflowId"]
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state(started).status is WorkflowStatus.COMPLETED
    assert sim.state(started).parent is None


def test_dynamic_task_runs_the_type_chosen_at_run_time() -> None:
    """DYNAMIC schedules the task type named by its input."""
    definition = wf(
        "dynt",
        {
            "name": "d",
            "taskReferenceName": "d",
            "type": "DYNAMIC",
            "dynamicTaskNameParam": "which",
            "inputParameters": {"which": "${workflow.input.which}", "n": 1},
        },
    )
    sim = Simulation([definition], WORKERS)
    sim.start("dynt", {"which": "add"})
    assert sim.state().tasks["d"].task_type == "add"
    assert sim.state().tasks["d"].output == {"n": 2}


def test_optional_failure_continues_and_start_delay_waits() -> None:
    """An optional task's failure does not fail the run; startDelay holds the command until due."""

    def boom(data: dict[str, Json]) -> dict[str, Json]:
        raise RuntimeError("flaky")

    definition = wf(
        "opts",
        {**simple("maybe", "boom"), "optional": True},
        {**simple("later", "add", n=1), "startDelay": 30},
    )
    sim = Simulation([definition], {"boom": boom, **WORKERS})
    sim.start("opts")
    assert sim.state().tasks["maybe"].status is TaskStatus.FAILED
    assert sim.state().tasks["later"].dispatch_at == sim.now + 30_000
    assert not any(c.task_id == "later" for c in sim.executed)
    sim.run(advance_clock=True)
    assert sim.state().status is WorkflowStatus.COMPLETED


def test_fork_inside_a_loop_inside_a_sub_workflow_and_switch_inside_a_fork() -> None:
    """Operators nest: a fork in a loop in a sub-workflow; a switch in a fork arm."""
    inner = wf(
        "inner",
        {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "loopCondition": "$.loop['iteration'] < 2",
            "loopOver": [
                {
                    "name": "f",
                    "taskReferenceName": "f",
                    "type": "FORK_JOIN",
                    "forkTasks": [
                        [simple("x", "add", n=1)],
                        [
                            {
                                "name": "s",
                                "taskReferenceName": "s",
                                "type": "SWITCH",
                                "evaluatorType": "value-param",
                                "expression": "k",
                                "inputParameters": {"k": "go"},
                                "decisionCases": {"go": [simple("y", "add", n=10)]},
                            }
                        ],
                    ],
                },
                {"name": "j", "taskReferenceName": "j", "type": "JOIN", "joinOn": ["x", "y"]},
            ],
        },
        outputParameters={"last": "${j.output}"},
    )
    outer = wf(
        "outer",
        {
            "name": "sub",
            "taskReferenceName": "sub",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "inner"},
        },
    )
    sim = Simulation([inner, outer], WORKERS)
    sim.start("outer")
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().output["last"] == {"x": {"n": 2}, "y": {"n": 11}}
    child = sim.state(sim.state().tasks["sub"].output["subWorkflowId"])
    assert {"x__1", "x__2", "y__1", "y__2", "j__2"} <= set(child.tasks)


@pytest.mark.parametrize("kind", ["SWITCH", "DO_WHILE"])
def test_bad_expression_fails_the_task_with_the_script_error(kind: str) -> None:
    """A SWITCH or loop condition that throws fails the workflow naming the script error."""
    task: dict[str, Json] = {"name": "x", "taskReferenceName": "x", "type": kind}
    if kind == "SWITCH":
        task |= {
            "evaluatorType": "javascript",
            "expression": "$.a.b.c",
            "decisionCases": {"1": [simple("one")]},
        }
    else:
        task |= {"loopCondition": "$.nope.nope", "loopOver": [simple("body")]}
    sim = Simulation([wf("bad", task)], WORKERS)
    sim.start("bad")
    assert sim.state().status is WorkflowStatus.FAILED
    assert "threw" in (sim.state().reason or "")
