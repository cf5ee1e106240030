"""Operating workflows over HTTP: lifecycle operations, refused definitions, health, metrics.

Every definition here runs in the engine alone (INLINE, SET_VARIABLE, WAIT, HUMAN, TERMINATE),
so a processor thread is all a test needs besides the API. Search and the metrics summary,
which count every run, are in ``test_api_search``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration
Json = Any

QUICK = {
    "name": "quick",
    "tasks": [
        {
            "name": "double",
            "taskReferenceName": "double",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "expression": "({n: $.n * 2})",
                "n": "${workflow.input.n}",
            },
        }
    ],
    "outputParameters": {"n": "${double.output.result.n}"},
}
GATED = {
    "name": "gated",
    "tasks": [
        {
            "name": "note",
            "taskReferenceName": "note",
            "type": "SET_VARIABLE",
            "inputParameters": {"stage": "gated"},
        },
        {"name": "gate", "taskReferenceName": "gate", "type": "WAIT"},
        {
            "name": "finish",
            "taskReferenceName": "finish",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "expression": "({via: $.via, stage: $.stage})",
                "via": "${gate.output.via}",
                "stage": "${workflow.variables.stage}",
            },
        },
    ],
    "outputParameters": {"via": "${finish.output.result.via}"},
}
REVIEWED = {
    "name": "reviewed",
    "tasks": [
        {"name": "review", "taskReferenceName": "review", "type": "HUMAN"},
        {
            "name": "stop",
            "taskReferenceName": "stop",
            "type": "TERMINATE",
            "inputParameters": {
                "terminationStatus": "COMPLETED",
                "workflowOutput": {"approved": "${review.output.approved}"},
            },
        },
    ],
}


def registered(url: str) -> Iterator[httpx.Client]:
    """A client of the API at ``url`` once every definition is registered."""
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/v1/metadata/workflows", json=[QUICK, GATED, REVIEWED])
        assert response.status_code == 201, response.text
        yield client


@pytest.fixture(scope="module")
def api(module_api: ApiServer, module_processor: Processor) -> Iterator[httpx.Client]:
    """A client of an API (auth off) with a processor running and every definition registered.

    The module's tests share them and steer runs of their own ids; none of them terminates a
    run or leaves a HUMAN task waiting, which the terminate and retry tests look for.
    """
    yield from registered(module_api.url)


def start(api: httpx.Client, name: str, workflow_id: str, **body: Json) -> None:
    """Start a run of ``name`` with id ``workflow_id``."""
    response = api.post("/v1/workflows", json={"name": name, "workflowId": workflow_id, **body})
    assert response.status_code == 201, response.text


def run(api: httpx.Client, workflow_id: str) -> dict[str, Json]:
    """The run as GET returns it (with its tasks)."""
    response = api.get(f"/v1/workflows/{workflow_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def reaches(api: httpx.Client, workflow_id: str, status: str) -> dict[str, Json]:
    """Wait until the run has ``status``; return it."""

    def current() -> dict[str, Json]:
        response = api.get(f"/v1/workflows/{workflow_id}")
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["status"] == status, f"{workflow_id} is {found['status']}"
        return found  # type: ignore[no-any-return]

    return assert_eventually(current, timeout=30)


def waiting_at(api: httpx.Client, workflow_id: str, ref: str) -> dict[str, Json]:
    """Wait until the run's task ``ref`` is scheduled and not done; return the run."""

    def current() -> dict[str, Json]:
        response = api.get(f"/v1/workflows/{workflow_id}")
        assert response.status_code == 200, response.text
        found = response.json()
        tasks = {t["refName"]: t["status"] for t in found["tasks"]}
        assert tasks.get(ref) in ("SCHEDULED", "IN_PROGRESS"), tasks
        return found  # type: ignore[no-any-return]

    return assert_eventually(current, timeout=30)


def operate(api: httpx.Client, workflow_id: str, op: str, body: Json = None) -> httpx.Response:
    """POST a lifecycle operation; the body defaults to an empty object."""
    return api.post(f"/v1/workflows/{workflow_id}/{op}", json={} if body is None else body)


def event_types(api: httpx.Client, workflow_id: str) -> list[str]:
    """The types of the run's events, in order."""
    return [e["type"] for e in api.get(f"/v1/workflows/{workflow_id}/history").json()["events"]]


def search(api: httpx.Client, **params: Json) -> tuple[int, list[str]]:
    """The total and the page of ids a search returns."""
    response = api.get("/v1/workflows", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    page = response.json()
    return page["total"], [row["workflowId"] for row in page["results"]]


# Starting and steering -------------------------------------------------------------------------


def test_pause_resume_and_signal_a_wait_task(api: httpx.Client) -> None:
    """A paused run resumes; a signal completes its WAIT task and the output flows on."""
    start(api, "gated", "steered")
    waiting_at(api, "steered", "gate")
    assert operate(api, "steered", "pause", {"reason": "lunch"}).status_code == 202
    paused = reaches(api, "steered", "PAUSED")
    assert paused["variables"] == {"stage": "gated"}
    assert operate(api, "steered", "resume").status_code == 202
    reaches(api, "steered", "RUNNING")
    signalled = operate(api, "steered", "signal", {"taskRef": "gate", "output": {"via": "signal"}})
    assert signalled.status_code == 202, signalled.text
    assert signalled.json() == {"workflowId": "steered", "requested": "signal"}
    done = reaches(api, "steered", "COMPLETED")
    assert done["output"] == {"via": "signal"}
    types = event_types(api, "steered")
    assert types.index("WorkflowPaused") < types.index("WorkflowResumed") < len(types) - 1
    assert types[-1] == "WorkflowCompleted"


def test_terminate_ends_a_run_with_the_reason(api: httpx.Client) -> None:
    """Terminate ends a running workflow as TERMINATED with a WorkflowTerminated event."""
    start(api, "gated", "stopped")
    waiting_at(api, "stopped", "gate")
    response = operate(api, "stopped", "terminate", {"reason": "no longer needed"})
    assert response.status_code == 202, response.text
    ended = reaches(api, "stopped", "TERMINATED")
    assert ended["reason"] == "no longer needed"
    assert ended["endTime"] is not None
    events = api.get("/v1/workflows/stopped/history").json()["events"]
    terminated = [e for e in events if e["type"] == "WorkflowTerminated"]
    assert [e["reason"] for e in terminated] == ["no longer needed"]
    assert search(api, status="TERMINATED") == (1, ["stopped"])


def test_retry_reopens_a_failed_run_at_its_failed_task(api: httpx.Client) -> None:
    """A run failed by its HUMAN task retries at that task and then completes."""
    start(api, "reviewed", "rejected")
    waiting_at(api, "rejected", "review")
    failed = operate(
        api, "rejected", "signal", {"taskRef": "review", "status": "FAILED", "reason": "typo"}
    )
    assert failed.status_code == 202, failed.text
    reaches(api, "rejected", "FAILED")
    assert api.get("/v1/human-tasks").json()["results"] == []
    assert operate(api, "rejected", "retry").status_code == 202
    reopened = waiting_at(api, "rejected", "review")
    assert reopened["status"] == "RUNNING"
    inbox = assert_eventually(lambda: api.get("/v1/human-tasks").json()["results"], timeout=30)
    assert [row["workflowId"] for row in inbox] == ["rejected"]
    completed = api.post(
        "/v1/human-tasks/rejected/review/complete", json={"output": {"approved": True}}
    )
    assert completed.status_code == 202, completed.text
    assert reaches(api, "rejected", "COMPLETED")["output"] == {"approved": True}
    assert "WorkflowReopened" in event_types(api, "rejected")


def test_restart_and_rerun_run_a_completed_workflow_again(api: httpx.Client) -> None:
    """Restart runs an ended run from the start; rerun from a task runs it and what follows."""
    start(api, "quick", "again", input={"n": 5})
    reaches(api, "again", "COMPLETED")
    assert operate(api, "again", "restart", {"useLatestDefinition": True}).status_code == 202
    assert_eventually(lambda: event_types(api, "again").count("WorkflowCompleted") == 2)
    assert run(api, "again")["output"] == {"n": 10}

    start(api, "gated", "replayed")
    waiting_at(api, "replayed", "gate")
    operate(api, "replayed", "signal", {"taskRef": "gate", "output": {"via": "first"}})
    reaches(api, "replayed", "COMPLETED")
    rerun = operate(api, "replayed", "rerun", {"fromTask": "gate"})
    assert rerun.status_code == 202, rerun.text
    waiting_at(api, "replayed", "gate")
    operate(api, "replayed", "signal", {"taskRef": "gate", "output": {"via": "second"}})
    assert_eventually(lambda: event_types(api, "replayed").count("WorkflowCompleted") == 2)
    again = run(api, "replayed")
    assert (again["status"], again["output"]) == ("COMPLETED", {"via": "second"})
    reopened = [
        e
        for e in api.get("/v1/workflows/replayed/history").json()["events"]
        if e["type"] == "WorkflowReopened"
    ]
    assert [e["mode"] for e in reopened] == ["rerun"]


def test_skip_a_wait_task_with_an_output(api: httpx.Client) -> None:
    """Skipping a waiting WAIT task counts it done with the given output."""
    start(api, "gated", "skipped")
    waiting_at(api, "skipped", "gate")
    response = operate(api, "skipped", "skip", {"taskRef": "gate", "output": {"via": "skip"}})
    assert response.status_code == 202, response.text
    done = reaches(api, "skipped", "COMPLETED")
    assert done["output"] == {"via": "skip"}
    assert {t["refName"]: t["status"] for t in done["tasks"]}["gate"] == "SKIPPED"


def test_invalid_transitions_conflict_and_unknown_workflows_are_not_found(
    api: httpx.Client,
) -> None:
    """An operation the run's status does not allow is 409 with why; unknown ids are 404."""
    start(api, "gated", "busy")
    waiting_at(api, "busy", "gate")
    start(api, "quick", "finished", input={"n": 1})
    reaches(api, "finished", "COMPLETED")
    conflicts = {
        ("busy", "resume"): "RUNNING",
        ("busy", "retry"): "RUNNING",
        ("busy", "restart"): "RUNNING",
        ("finished", "pause"): "COMPLETED",
        ("finished", "terminate"): "COMPLETED",
        ("finished", "retry"): "COMPLETED",
        ("finished", "skip"): "COMPLETED",
    }
    for (workflow_id, op), status in conflicts.items():
        body = {"taskRef": "double"} if op == "skip" else None
        response = operate(api, workflow_id, op, body)
        assert response.status_code == 409, (op, response.text)
        assert response.json()["detail"] == f"cannot {op} workflow {workflow_id}: it is {status}"
    assert run(api, "busy")["status"] == "RUNNING"

    missing = [
        api.get("/v1/workflows/nope"),
        api.get("/v1/workflows/nope/history"),
        operate(api, "nope", "terminate"),
        operate(api, "nope", "signal", {"taskRef": "gate"}),
        api.post("/v1/human-tasks/nope/review/complete", json={}),
        api.post("/v1/workflows", json={"name": "no_such_flow"}),
        api.get("/v1/metadata/workflows/no_such_flow"),
        api.delete("/v1/metadata/workflows/no_such_flow/1"),
    ]
    assert [r.status_code for r in missing] == [404] * len(missing)
    assert missing[0].json()["detail"] == "no workflow 'nope'"


# Definitions and health ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        (
            {"name": "broken", "tasks": [{"name": "a", "type": "SIMPLE"}]},
            "tasks[0].taskReferenceName",
        ),
        ({"name": "broken", "tasks": []}, "tasks"),
        ({"name": "broken", "version": 0, "tasks": [{"name": "a"}]}, "version"),
        (
            {"name": "broken", "tasks": [{"name": "a", "taskReferenceName": "a", "type": "NOPE"}]},
            "tasks[0].type",
        ),
    ],
    ids=["missing-ref", "no-tasks", "version-zero", "unknown-type"],
)
def test_an_invalid_definition_is_refused_naming_the_field_path(
    api_server: str, definition: dict[str, Json], path: str
) -> None:
    """Registering an invalid definition is 400 naming the field path; nothing is registered."""
    with httpx.Client(base_url=api_server, timeout=30) as api:
        response = api.post("/v1/metadata/workflows", json=definition)
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert detail.startswith(f"definition 0: {path}: "), detail
        assert api.get("/v1/metadata/workflows/broken").status_code == 404


def test_readiness_status_and_prometheus_metrics(api_server: str) -> None:
    """/readyz is 200, /v1/status reports the lag per partition, /metrics is Prometheus text."""
    with httpx.Client(base_url=api_server, timeout=30) as api:
        ready = api.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})

        def measured() -> dict[str, Json]:
            status = api.get("/v1/status").json()
            assert len(status["lag"]["partitions"]) == 6, status
            return status  # type: ignore[no-any-return]

        status = assert_eventually(measured, timeout=15)
        assert status["ready"] is True
        assert set(status["lag"]) == {"records", "partitions", "applyDelayMs"}
        assert status["lag"]["records"] == 0
        assert isinstance(status["eventsFolded"], int)

        metrics = api.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE" in metrics.text
        assert "orch_readmodel_lag " in metrics.text
        assert "orch_readmodel_ready 1.0" in metrics.text
