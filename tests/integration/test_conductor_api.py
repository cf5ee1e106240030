"""The Conductor-compatible REST API (``/api``) against a real API server, broker and processor.

Definitions run in the engine alone (INLINE, WAIT, HUMAN, TERMINATE), except ``work``, whose
SIMPLE task has no worker: the test reports its result over HTTP, as a Conductor worker would.
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
    "name": "c_quick",
    "version": 1,
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
    "name": "c_gated",
    "tasks": [
        {"name": "gate", "taskReferenceName": "gate", "type": "WAIT"},
        {
            "name": "finish",
            "taskReferenceName": "finish",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "expression": "({via: $.via})",
                "via": "${gate.output.via}",
            },
        },
    ],
    "outputParameters": {"via": "${finish.output.result.via}"},
}
REVIEWED = {
    "name": "c_reviewed",
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
WORK = {
    "name": "c_work",
    "tasks": [{"name": "c_encode", "taskReferenceName": "encode", "type": "SIMPLE"}],
    "outputParameters": {"url": "${encode.output.url}"},
}
CONDUCTOR_ERROR_KEYS = {"status", "message", "instance", "retryable"}


@pytest.fixture(scope="module")
def api(module_api: ApiServer, module_processor: Processor) -> Iterator[httpx.Client]:
    """A client of an API (auth off) with a processor running and the definitions registered.

    The tests share them: each starts runs of its own (ids from the API; request and
    correlation ids apart), and what one changes (version 2 of ``c_quick``, deleted again; the
    ``c_encode`` task definition's retries) changes nothing another asserts.
    """
    with httpx.Client(base_url=module_api.url, timeout=30) as client:
        registered = client.put("/api/metadata/workflow", json=[QUICK, GATED, REVIEWED, WORK])
        assert registered.status_code == 200, registered.text
        yield client


def start(api: httpx.Client, name: str, **body: Json) -> str:
    """Start ``name`` with POST /api/workflow; return the id Conductor answers as text."""
    response = api.post("/api/workflow", json={"name": name, **body})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def reaches(api: httpx.Client, workflow_id: str, status: str) -> dict[str, Json]:
    """Wait until the run has ``status`` (Conductor's name for it); return the Workflow."""

    def current() -> dict[str, Json]:
        response = api.get(f"/api/workflow/{workflow_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Json] = response.json()
        assert found["status"] == status, f"{workflow_id} is {found['status']}"
        return found

    return assert_eventually(current, timeout=30)


def waiting_at(api: httpx.Client, workflow_id: str, ref: str) -> dict[str, Json]:
    """Wait until the run's task ``ref`` is waiting (IN_PROGRESS or SCHEDULED); return it."""

    def current() -> dict[str, Json]:
        response = api.get(f"/api/workflow/{workflow_id}")
        assert response.status_code == 200, response.text
        tasks = {t["referenceTaskName"]: t for t in response.json()["tasks"]}
        assert ref in tasks, sorted(tasks)
        assert tasks[ref]["status"] in ("SCHEDULED", "IN_PROGRESS"), tasks[ref]["status"]
        return tasks[ref]  # type: ignore[no-any-return]

    return assert_eventually(current, timeout=30)


def assert_conductor_error(response: httpx.Response, status: int, *words: str) -> None:
    """``response`` is Conductor's error body with ``status`` and a message naming ``words``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= CONDUCTOR_ERROR_KEYS, body
    assert body["status"] == status
    assert body["retryable"] is False
    for word in words:
        assert word in body["message"], body["message"]


def test_metadata_round_trip(api: httpx.Client) -> None:
    """Definitions register, conflict, overwrite, list, read by version, and delete."""
    assert_conductor_error(api.post("/api/metadata/workflow", json=QUICK), 409, "exists")
    second = {**QUICK, "version": 2, "description": "second"}
    assert api.post("/api/metadata/workflow", json=second).status_code == 200
    overwritten = api.post("/api/metadata/workflow?overwrite=true", json=second)
    assert overwritten.status_code == 200, overwritten.text

    names = {(d["name"], d["version"]) for d in api.get("/api/metadata/workflow").json()}
    assert {("c_quick", 1), ("c_quick", 2), ("c_gated", 1)} <= names
    assert api.get("/api/metadata/workflow/c_quick").json()["version"] == 2
    first = api.get("/api/metadata/workflow/c_quick", params={"version": 1}).json()
    assert first["tasks"][0]["taskReferenceName"] == "double"

    assert api.delete("/api/metadata/workflow/c_quick/2").status_code == 200
    gone = api.get("/api/metadata/workflow/c_quick", params={"version": 2})
    assert_conductor_error(gone, 404, "c_quick")
    assert_conductor_error(api.get("/api/metadata/workflow/nothing_here"), 404, "nothing_here")


def test_task_definitions(api: httpx.Client) -> None:
    """Task definitions register as a list (POST) or one (PUT), and read back."""
    listed = [{"name": "c_encode", "retryCount": 2, "timeoutSeconds": 60, "unknownField": 1}]
    assert api.post("/api/metadata/taskdefs", json=listed).status_code == 200
    updated = api.put("/api/metadata/taskdefs", json={"name": "c_encode", "retryCount": 5})
    assert updated.status_code == 200, updated.text
    assert api.get("/api/metadata/taskdefs/c_encode").json()["retryCount"] == 5
    assert "c_encode" in {t["name"] for t in api.get("/api/metadata/taskdefs").json()}
    assert_conductor_error(api.get("/api/metadata/taskdefs/nope"), 404, "nope")


def test_invalid_definition_is_400_naming_the_field(api: httpx.Client) -> None:
    """A definition the engine refuses is a 400 whose message names the problem and its path."""
    duplicate = {
        "name": "c_bad",
        "tasks": [
            {"name": "a", "taskReferenceName": "same", "type": "NOOP"},
            {"name": "b", "taskReferenceName": "same", "type": "NOOP"},
        ],
    }
    assert_conductor_error(api.post("/api/metadata/workflow", json=duplicate), 400, "same")
    no_tasks = api.post("/api/metadata/workflow", json={"name": "c_bad", "tasks": []})
    assert_conductor_error(no_tasks, 400, "tasks")


def test_start_both_ways_and_read(api: httpx.Client) -> None:
    """Both starts answer the id as text; the run reads as Conductor's Workflow and status."""
    by_request = start(
        api, "c_quick", version=1, input={"n": 2}, correlationId="order-7", taskToDomain={}
    )
    by_name = api.post("/api/workflow/c_quick?correlationId=order-7&priority=3", json={"n": 5})
    assert by_name.status_code == 200, by_name.text

    run = reaches(api, by_request, "COMPLETED")
    assert run["workflowName"] == "c_quick"
    assert run["workflowVersion"] == 1
    assert run["output"] == {"n": 4}
    assert run["correlationId"] == "order-7"
    assert run["endTime"] >= run["startTime"] > 0
    assert run["workflowDefinition"]["name"] == "c_quick"
    [task] = run["tasks"]
    assert task["referenceTaskName"] == "double"
    assert task["taskType"] == "INLINE"
    assert task["status"] == "COMPLETED"
    assert task["workflowInstanceId"] == by_request
    assert task["seq"] == 1
    assert task["outputData"]["result"] == {"n": 4}

    assert reaches(api, by_name.text, "COMPLETED")["output"] == {"n": 10}
    assert api.get(f"/api/workflow/{by_request}?includeTasks=false").json()["tasks"] == []
    status = api.get(f"/api/workflow/{by_request}/status?includeOutput=true").json()
    assert status == {
        "workflowId": by_request,
        "correlationId": "order-7",
        "status": "COMPLETED",
        "output": {"n": 4},
        "variables": None,
    }
    correlated = api.get("/api/workflow/c_quick/correlated/order-7?includeClosed=true").json()
    assert {w["workflowId"] for w in correlated} == {by_request, by_name.text}
    assert api.get("/api/workflow/c_quick/correlated/order-7").json() == []


def test_start_with_inline_definition(api: httpx.Client) -> None:
    """A StartWorkflowRequest with ``workflowDef`` runs that definition, registered or not."""
    inline = {**QUICK, "name": "c_inline_only"}
    workflow_id = start(api, "c_inline_only", workflowDef=inline, input={"n": 21})
    assert reaches(api, workflow_id, "COMPLETED")["output"] == {"n": 42}
    bad = api.post("/api/workflow", json={"name": "x", "workflowDef": {"name": "x", "tasks": []}})
    assert_conductor_error(bad, 400, "tasks")


def test_pause_resume_skip(api: httpx.Client) -> None:
    """PUT pause and resume change the status; PUT skiptask lets the run go on with an output."""
    workflow_id = start(api, "c_gated")
    waiting_at(api, workflow_id, "gate")
    assert api.put(f"/api/workflow/{workflow_id}/pause").status_code == 200
    reaches(api, workflow_id, "PAUSED")
    assert_conductor_error(api.put(f"/api/workflow/{workflow_id}/pause"), 409, "PAUSED")
    assert api.put(f"/api/workflow/{workflow_id}/resume").status_code == 200
    reaches(api, workflow_id, "RUNNING")

    skipped = api.put(
        f"/api/workflow/{workflow_id}/skiptask/gate", json={"taskOutput": {"via": "skip"}}
    )
    assert skipped.status_code == 200, skipped.text
    run = reaches(api, workflow_id, "COMPLETED")
    assert run["output"] == {"via": "skip"}
    assert {t["referenceTaskName"]: t["status"] for t in run["tasks"]}["gate"] == "SKIPPED"


def test_terminate_retry_restart_rerun(api: httpx.Client) -> None:
    """DELETE terminates with a reason; retry, restart and rerun reopen the run."""
    workflow_id = start(api, "c_gated")
    waiting_at(api, workflow_id, "gate")
    assert api.delete(f"/api/workflow/{workflow_id}?reason=enough").status_code == 200
    run = reaches(api, workflow_id, "TERMINATED")
    assert run["reasonForIncompletion"] == "enough"
    assert {t["referenceTaskName"]: t["status"] for t in run["tasks"]}["gate"] == "CANCELED"
    assert_conductor_error(api.delete(f"/api/workflow/{workflow_id}"), 409, "TERMINATED")

    assert api.post(f"/api/workflow/{workflow_id}/retry").status_code == 200
    waiting_at(api, workflow_id, "gate")
    assert api.post(f"/api/tasks/{workflow_id}/gate/COMPLETED", json={"via": "t"}).text == "gate"
    reaches(api, workflow_id, "COMPLETED")

    restarted = api.post(f"/api/workflow/{workflow_id}/restart?useLatestDefinitions=true")
    assert restarted.status_code == 200, restarted.text
    waiting_at(api, workflow_id, "gate")
    rerun = api.post(f"/api/workflow/{workflow_id}/rerun", json={"reRunFromTaskId": "gate"})
    assert rerun.status_code == 200, rerun.text
    assert rerun.text == workflow_id

    def reopened() -> list[str]:
        history = api.get(f"/v1/workflows/{workflow_id}/history").json()["events"]
        modes = [e["mode"] for e in history if e["type"] == "WorkflowReopened"]
        assert modes == ["retry", "restart", "rerun"], modes
        return modes

    assert_eventually(reopened, timeout=30)


def test_human_task_completed_by_reference_name(api: httpx.Client) -> None:
    """POST /api/tasks/{wf}/{ref}/COMPLETED answers a HUMAN task; a second update is a 409."""
    workflow_id = start(api, "c_reviewed")
    task = waiting_at(api, workflow_id, "review")
    assert task["status"] == "IN_PROGRESS"
    done = api.post(f"/api/tasks/{workflow_id}/review/COMPLETED", json={"approved": True})
    assert done.status_code == 200, done.text
    assert done.text == task["taskId"]
    assert reaches(api, workflow_id, "COMPLETED")["output"] == {"approved": True}
    again = api.post(f"/api/tasks/{workflow_id}/review/COMPLETED", json={"approved": False})
    assert_conductor_error(again, 409, "already")


def test_human_task_completed_by_task_result(api: httpx.Client) -> None:
    """POST /api/tasks with Conductor's TaskResult answers a HUMAN task too."""
    workflow_id = start(api, "c_reviewed")
    task = waiting_at(api, workflow_id, "review")
    result = {
        "workflowInstanceId": workflow_id,
        "taskId": task["taskId"],
        "status": "COMPLETED",
        "outputData": {"approved": False},
        "logs": [],
        "extendLease": False,
    }
    response = api.post("/api/tasks", json=result)
    assert response.status_code == 200, response.text
    assert reaches(api, workflow_id, "COMPLETED")["output"] == {"approved": False}


def test_worker_task_result(api: httpx.Client) -> None:
    """A worker's TaskResult over HTTP reports progress, then completes its SIMPLE task."""
    workflow_id = start(api, "c_work")
    task = waiting_at(api, workflow_id, "encode")
    assert task["taskType"] == "c_encode"
    assert task["taskDefName"] == "c_encode"
    base = {"workflowInstanceId": workflow_id, "taskId": task["taskId"], "workerId": "w1"}
    progress = api.post("/api/tasks", json={**base, "status": "IN_PROGRESS"})
    assert progress.status_code == 200, progress.text

    def in_progress() -> bool:
        found = waiting_at(api, workflow_id, "encode")
        return bool(found["status"] == "IN_PROGRESS" and found["workerId"] == "w1")

    assert_eventually(in_progress, timeout=30)
    done = {**base, "status": "COMPLETED", "outputData": {"url": "s3://x"}}
    assert api.post("/api/tasks", json=done).status_code == 200
    assert reaches(api, workflow_id, "COMPLETED")["output"] == {"url": "s3://x"}
    assert_conductor_error(api.post("/api/tasks", json=done), 409, "already")


def test_bad_input_is_4xx_with_a_message(api: httpx.Client) -> None:
    """Unknown runs, definitions and tasks, bad bodies and refused operations: 4xx, never 500."""
    assert_conductor_error(api.get("/api/workflow/no-such-run"), 404, "no-such-run")
    assert_conductor_error(api.get("/api/workflow/no-such-run/status"), 404)
    assert_conductor_error(api.post("/api/workflow", json={"name": "nope"}), 404, "nope")
    assert_conductor_error(api.post("/api/workflow", json={"input": {}}), 400, "name")
    assert_conductor_error(api.post("/api/workflow", content=b"{not json"), 400)
    assert_conductor_error(api.post("/api/workflow", json={"name": "c_quick", "version": 0}), 400)
    assert_conductor_error(api.put("/api/workflow/no-such-run/pause"), 404)

    workflow_id = start(api, "c_quick", input={"n": 1})
    reaches(api, workflow_id, "COMPLETED")
    assert_conductor_error(api.put(f"/api/workflow/{workflow_id}/resume"), 409, "COMPLETED")
    unknown_task = api.post(f"/api/tasks/{workflow_id}/nope/COMPLETED", json={})
    assert_conductor_error(unknown_task, 404, "nope")
    assert_conductor_error(api.post(f"/api/tasks/{workflow_id}/double/DONE", json={}), 400)
    missing = api.post("/api/tasks", json={"taskId": "double", "status": "COMPLETED"})
    body = missing.json()
    assert_conductor_error(missing, 400, "workflowInstanceId")
    assert body["validationErrors"][0]["path"].endswith("workflowInstanceId")
    assert_conductor_error(api.get("/api/no/such/path"), 404)


def test_execute_synchronously(api: httpx.Client) -> None:
    """POST /api/workflow/execute/{name}/{version} answers the finished run, or where it waits."""
    response = api.post(
        "/api/workflow/execute/c_quick/1?requestId=r1&waitForSeconds=20",
        json={"name": "c_quick", "version": 1, "input": {"n": 3}},
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "COMPLETED"
    assert run["output"] == {"n": 6}
    assert run["requestId"] == "r1"

    waiting = api.post(
        "/api/workflow/execute/c_gated/1?requestId=r2&waitUntilTaskRef=gate&waitForSeconds=20",
        json={"name": "c_gated"},
    ).json()
    assert waiting["status"] == "RUNNING"
    assert [t["referenceTaskName"] for t in waiting["tasks"]] == ["gate"]


def test_health(api: httpx.Client) -> None:
    """GET /health answers Conductor's HealthCheckStatus."""
    health = api.get("/health").json()
    assert health["healthy"] is True
    assert {r["name"] for r in health["healthResults"]} == {"readModel", "broker"}


def test_an_oversize_body_on_api_is_a_conductor_413(api_factory: Any) -> None:
    """The body limit answers Conductor's error shape on /api, before anything is parsed."""
    server = api_factory(max_body_bytes=1024)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/api/workflow/anything", json={"blob": "x" * 4096})
    assert_conductor_error(response, 413, "over the limit of 1024 bytes")
