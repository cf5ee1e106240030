"""Fault tolerance on the pure engine: retries, timeouts, compensation, lifecycle operations."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.dsl import parse_definition
from orchestrator.dsl.model import TaskDef
from orchestrator.engine.faults import retry_delay_ms
from orchestrator.engine.records import (
    PauseWorkflow,
    RerunWorkflow,
    RestartWorkflow,
    ResultStatus,
    ResumeWorkflow,
    RetryWorkflow,
    SkipTask,
    TaskResult,
    TaskStatus,
    WorkflowStatus,
)
from tests.simulation import Simulation

Json = Any


def wf(name: str, *tasks: dict[str, Json], **extra: Json) -> Any:
    """A definition from task dicts."""
    return parse_definition({"name": name, "tasks": list(tasks), **extra})


def task(ref: str, name: str = "work", **extra: Json) -> dict[str, Json]:
    """A SIMPLE task."""
    return {"name": name, "taskReferenceName": ref, **extra}


class Flaky:
    """A worker failing its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, data: dict[str, Json]) -> dict[str, Json]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"failure {self.calls}")
        return {"calls": self.calls}


def scheduled(sim: Simulation, task_id: str) -> list[Any]:
    """The TaskScheduled events of one task."""
    return [
        e for e in sim.events["wf"] if type(e).__name__ == "TaskScheduled" and e.task_id == task_id
    ]


def test_retry_with_fixed_delay_records_the_delay_and_succeeds() -> None:
    """A failed attempt is retried after retryDelaySeconds, recorded on the next TaskScheduled."""
    flaky = Flaky(2)
    definition = wf(
        "r", task("t", taskDefinition={"name": "work", "retryCount": 3, "retryDelaySeconds": 5})
    )
    sim = Simulation([definition], {"work": flaky})
    sim.start("r")
    sim.run(advance_clock=True)
    attempts = scheduled(sim, "t")
    assert [e.attempt for e in attempts] == [1, 2, 3]
    assert [e.retry_delay_ms for e in attempts] == [None, 5000, 5000]
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().tasks["t"].output == {"calls": 3}


def test_registered_task_definition_applies_and_exhaustion_dead_letters() -> None:
    """A registered TaskDef's retries run out: the workflow FAILS and the task is dead-lettered."""
    definition = wf("r2", task("t"))
    sim = Simulation([definition], {"work": Flaky(99)})
    sim.table.task_defs["work"] = TaskDef(name="work", retryCount=2, retryDelaySeconds=0)
    sim.start("r2")
    sim.run(advance_clock=True)
    assert sim.state().status is WorkflowStatus.FAILED
    assert [e.attempt for e in scheduled(sim, "t")] == [1, 2, 3]
    assert len(sim.dead_letters) == 1
    assert "after 3 attempt(s)" in sim.dead_letters[0].reason


def test_terminal_error_skips_retries_and_is_not_dead_lettered() -> None:
    """FAILED_WITH_TERMINAL_ERROR fails the task at once, whatever retryCount says."""
    definition = wf("r3", task("t", taskDefinition={"name": "work", "retryCount": 5}))
    sim = Simulation([definition], manual={"work"})
    sim.start("r3")
    command = sim.commands.pop()
    sim.submit(
        TaskResult(
            workflow_id="wf",
            task_id=command.task_id,
            attempt=1,
            status=ResultStatus.FAILED_WITH_TERMINAL_ERROR,
            reason="bad input",
        )
    )
    assert sim.state().status is WorkflowStatus.FAILED
    assert sim.dead_letters == []


@pytest.mark.parametrize(
    ("logic", "expected"),
    [
        ("FIXED", [2000, 2000, 2000]),
        ("LINEAR_BACKOFF", [6000, 12000, 18000]),
        ("EXPONENTIAL_BACKOFF", [2000, 4000, 8000]),
    ],
)
def test_backoff_delays(logic: str, expected: list[int]) -> None:
    """FIXED, LINEAR_BACKOFF (scale factor) and EXPONENTIAL_BACKOFF give Conductor's delays."""
    policy = {"retryDelaySeconds": 2, "retryLogic": logic, "backoffScaleFactor": 3}
    assert [retry_delay_ms(policy, attempt, "k") for attempt in (1, 2, 3)] == expected


def test_backoff_cap_and_deterministic_jitter() -> None:
    """maxRetryDelaySeconds caps a delay; jitter stays within its percent and repeats per key."""
    policy = {
        "retryDelaySeconds": 10,
        "retryLogic": "EXPONENTIAL_BACKOFF",
        "maxRetryDelaySeconds": 25,
    }
    assert retry_delay_ms(policy, 5, "k") == 25000
    jittered = {**policy, "retryJitterPercent": 20}
    delays = [retry_delay_ms(jittered, 1, f"k{i}") for i in range(50)]
    assert all(8000 <= d <= 12000 for d in delays)
    assert len(set(delays)) > 10
    assert retry_delay_ms(jittered, 1, "k3") == delays[3]


def test_response_timeout_retries_and_heartbeats_extend_it() -> None:
    """No result within responseTimeoutSeconds times the attempt out; a heartbeat resets it."""
    definition = wf(
        "rt",
        task(
            "t",
            taskDefinition={
                "name": "work",
                "retryCount": 1,
                "retryDelaySeconds": 0,
                "responseTimeoutSeconds": 10,
            },
        ),
    )
    sim = Simulation([definition], manual={"work"})
    sim.start("rt")
    sim.now += 8_000
    sim.submit(
        TaskResult(
            workflow_id="wf",
            task_id="t",
            attempt=1,
            status=ResultStatus.IN_PROGRESS,
            output={"progress": 0.5},
        )
    )
    sim.now += 8_000  # 16 s after dispatch, 8 s after the heartbeat
    sim.run()
    assert sim.state().tasks["t"].attempt == 1
    sim.run(advance_clock=True)  # the response timeout fires, the retry's does too
    kinds = sim.kinds()
    assert kinds.count("TaskTimedOut") == 2
    assert sim.state().status is WorkflowStatus.FAILED
    assert "timed out" in (sim.state().reason or "")


@pytest.mark.parametrize("policy", ["TIME_OUT_WF", "RETRY", "ALERT_ONLY"])
def test_task_timeout_policies(policy: str) -> None:
    """timeoutSeconds: TIME_OUT_WF times the run out, RETRY retries, ALERT_ONLY only records."""
    definition = wf(
        "to",
        task(
            "t",
            taskDefinition={
                "name": "work",
                "retryCount": 1,
                "retryDelaySeconds": 0,
                "timeoutSeconds": 30,
                "timeoutPolicy": policy,
            },
        ),
    )
    sim = Simulation([definition], manual={"work"})
    sim.start("to")
    sim.now += 31_000
    sim._fire_next_timer()
    sim.run()
    if policy == "TIME_OUT_WF":
        assert sim.state().status is WorkflowStatus.TIMED_OUT
    elif policy == "RETRY":
        assert sim.state().tasks["t"].attempt == 2
        assert sim.state().status is WorkflowStatus.RUNNING
    else:
        assert "TimeoutAlerted" in sim.kinds()
        assert sim.state().tasks["t"].status is TaskStatus.SCHEDULED


def test_workflow_timeout() -> None:
    """A workflow past its timeoutSeconds ends TIMED_OUT; ALERT_ONLY records an alert only."""
    sim = Simulation(
        [
            wf("wt", task("t"), timeoutSeconds=60),
            wf("wa", task("t"), timeoutSeconds=60, timeoutPolicy="ALERT_ONLY"),
        ],
        manual={"work"},
    )
    sim.start("wt")
    sim.start("wa", workflow_id="wf2")
    sim.run(advance_clock=True)
    assert sim.state().status is WorkflowStatus.TIMED_OUT
    assert sim.state("wf2").status is WorkflowStatus.RUNNING
    assert "TimeoutAlerted" in sim.kinds("wf2")


def test_callback_after_seconds_dispatches_the_task_again() -> None:
    """IN_PROGRESS with callbackAfterSeconds sends the same attempt to a worker again later."""
    sim = Simulation([wf("cb", task("t"))], manual={"work"})
    sim.start("cb")
    sim.commands.clear()
    sim.submit(
        TaskResult(
            workflow_id="wf",
            task_id="t",
            attempt=1,
            status=ResultStatus.IN_PROGRESS,
            callback_after_seconds=30,
        )
    )
    assert sim.commands == []
    sim.run(advance_clock=True)
    assert [(c.task_id, c.attempt) for c in sim.commands] == [("t", 1)]


def test_failure_workflow_starts_linked_to_the_failed_one() -> None:
    """failureWorkflow starts with the failed workflow's id and reason, and the link is recorded."""

    def boom(data: dict[str, Json]) -> dict[str, Json]:
        raise ValueError("card declined")

    main = wf("pay", task("charge", "boom"), failureWorkflow="cleanup")
    cleanup = wf(
        "cleanup", task("undo", "echo", inputParameters={"failed": "${workflow.input.workflowId}"})
    )
    sim = Simulation([main, cleanup], {"boom": boom, "echo": lambda d: d})
    sim.start("pay")
    failure_id = sim.events["wf"][-1].failure_workflow_id
    assert failure_id is not None
    assert sim.state(failure_id).input["workflowId"] == "wf"
    assert "card declined" in sim.state(failure_id).input["reason"]
    assert sim.state(failure_id).tasks["undo"].output == {"failed": "wf"}


def test_saga_compensations_run_in_reverse_order() -> None:
    """When a step fails, completed steps' compensations run latest first; the run ends FAILED."""
    order: list[str] = []

    def record(name: str) -> Any:
        return lambda data: order.append(name) or {"undone": name}

    def boom(data: dict[str, Json]) -> dict[str, Json]:
        raise RuntimeError("no seats")

    definition = wf(
        "trip",
        task("car", "ok", compensation=task("undo_car", "undo_car")),
        task("hotel", "ok", compensation=task("undo_hotel", "undo_hotel")),
        task("flight", "boom"),
    )
    workers = {
        "ok": lambda d: {},
        "boom": boom,
        "undo_car": record("car"),
        "undo_hotel": record("hotel"),
    }
    sim = Simulation([definition], workers)
    sim.start("trip")
    assert order == ["hotel", "car"]
    state = sim.state()
    assert state.status is WorkflowStatus.FAILED
    assert sim.events["wf"][-1].compensation == {
        "steps": ["hotel__compensate", "car__compensate"],
        "failed": None,
    }


def test_failed_compensation_ends_compensation_failed() -> None:
    """A compensation that fails ends the workflow COMPENSATION_FAILED."""

    def boom(data: dict[str, Json]) -> dict[str, Json]:
        raise RuntimeError("down")

    definition = wf("saga", task("a", "ok", compensation=task("undo_a", "boom")), task("b", "boom"))
    sim = Simulation([definition], {"ok": lambda d: {}, "boom": boom})
    sim.start("saga")
    assert sim.state().status is WorkflowStatus.COMPENSATION_FAILED


def test_pause_holds_new_tasks_and_resume_goes_on() -> None:
    """While paused, results land but nothing new is scheduled; resume schedules the next task."""
    sim = Simulation([wf("p", task("a"), task("b"))], {"work": lambda d: {}}, manual={"work"})
    sim.start("p")
    sim.submit(PauseWorkflow(workflow_id="wf"))
    sim.submit(sim.execute(sim.commands.pop()))
    assert sim.state().tasks["a"].status is TaskStatus.COMPLETED
    assert "b" not in sim.state().tasks
    sim.submit(ResumeWorkflow(workflow_id="wf"))
    assert "b" in sim.state().tasks


def test_retry_restart_rerun_and_skip() -> None:
    """Retry resumes from the failed task; restart and rerun run again; skip passes a task over."""
    flaky = Flaky(1)
    sim = Simulation(
        [wf("ops", task("a", "fine"), task("b", "flaky"), task("c", "fine"))],
        {"fine": lambda d: {"ok": True}, "flaky": flaky},
    )
    sim.start("ops")
    assert sim.state().status is WorkflowStatus.FAILED
    sim.submit(RetryWorkflow(workflow_id="wf"))
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().tasks["b"].attempt == 2
    assert sim.state().tasks["a"].attempt == 1
    sim.submit(RestartWorkflow(workflow_id="wf"))
    assert sim.state().status is WorkflowStatus.COMPLETED
    assert sim.state().tasks["a"].attempt == 2
    sim.submit(RerunWorkflow(workflow_id="wf", from_task="c"))
    assert (sim.state().tasks["a"].attempt, sim.state().tasks["c"].attempt) == (2, 3)
    sim2 = Simulation([wf("sk", task("a"), task("b"))], manual={"work"})
    sim2.start("sk")
    sim2.submit(SkipTask(workflow_id="wf", task_ref="b", output={"skipped": True}))
    sim2.submit(SkipTask(workflow_id="wf", task_ref="a"))
    assert sim2.state().status is WorkflowStatus.COMPLETED
    assert sim2.state().tasks["b"].status is TaskStatus.SKIPPED
    assert sim2.state().tasks["b"].output == {"skipped": True}


def test_lifecycle_requests_that_do_not_apply_are_rejected() -> None:
    """Resume of a running, retry of a completed, skip of a finished task: recorded refusals."""
    sim = Simulation([wf("rej", task("a"))], {"work": lambda d: {}})
    sim.start("rej")
    sim.submit(ResumeWorkflow(workflow_id="wf"))
    sim.submit(RetryWorkflow(workflow_id="wf"))
    sim.submit(SkipTask(workflow_id="wf", task_ref="a"))
    assert sim.kinds()[-3:] == ["RequestRejected"] * 3


def test_poll_timeout_retries_a_task_nobody_picked_up() -> None:
    """pollTimeoutSeconds: a command no worker acknowledged in time is timed out and retried."""
    definition = wf(
        "poll",
        task(
            "t",
            taskDefinition={
                "name": "work",
                "retryCount": 1,
                "retryDelaySeconds": 0,
                "pollTimeoutSeconds": 5,
            },
        ),
    )
    sim = Simulation([definition], manual={"work"})
    sim.start("poll")
    assert sim.commands[0].ack is True
    sim.now += 6_000
    sim._fire_next_timer()
    sim.run()
    assert sim.state().tasks["t"].attempt == 2
    sim.submit(
        TaskResult(workflow_id="wf", task_id="t", attempt=2, status=ResultStatus.IN_PROGRESS)
    )
    sim.now += 60_000
    sim._fire_next_timer()
    sim.run()
    assert sim.state().tasks["t"].attempt == 2
    assert sim.state().tasks["t"].status is TaskStatus.IN_PROGRESS
