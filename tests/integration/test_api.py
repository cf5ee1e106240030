"""The HTTP API against the real broker, a real processor and its own read model."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrator.api.readstore import ReadStore
from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

HUMAN_FLOW = {
    "name": "api_review",
    "version": 1,
    "tasks": [
        {
            "name": "shape",
            "taskReferenceName": "shape",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "expression": "({topic: $.topic.toUpperCase()})",
                "topic": "${workflow.input.topic}",
            },
        },
        {
            "name": "review",
            "taskReferenceName": "review",
            "type": "HUMAN",
            "inputParameters": {"assignee": "alice", "draft": "${shape.output.result}"},
        },
    ],
    "outputParameters": {"approved": "${review.output.approved}"},
}


def _status(api: httpx.Client, workflow_id: str) -> Any:
    response = api.get(f"/v1/workflows/{workflow_id}")
    return response.json()["status"] if response.status_code == 200 else None


def test_register_start_inbox_complete(api_server: str, processor_thread: Processor) -> None:
    """A definition registered over HTTP runs; its HUMAN task completes through the inbox."""
    with httpx.Client(base_url=api_server, timeout=10) as api:
        registered = api.post("/v1/metadata/workflows", json=HUMAN_FLOW)
        assert registered.status_code == 201, registered.text
        assert api.get("/v1/metadata/workflows/api_review/1").json()["name"] == "api_review"
        started = api.post(
            "/v1/workflows", json={"name": "api_review", "input": {"topic": "kafka"}}
        )
        assert started.status_code == 201, started.text
        workflow_id = started.json()["workflowId"]
        inbox = assert_eventually(
            lambda: (
                api.get("/v1/human-tasks", params={"assignee": "alice"}).json()["results"] or None
            ),
            timeout=20,
        )
        assert inbox[0]["workflowId"] == workflow_id
        assert inbox[0]["input"]["draft"] == {"topic": "KAFKA"}
        done = api.post(
            f"/v1/human-tasks/{workflow_id}/review/complete", json={"output": {"approved": True}}
        )
        assert done.status_code == 202, done.text
        assert_eventually(lambda: _status(api, workflow_id) == "COMPLETED", timeout=20)
        run = api.get(f"/v1/workflows/{workflow_id}").json()
        assert run["output"] == {"approved": True}
        assert {t["refName"]: t["status"] for t in run["tasks"]} == {
            "shape": "COMPLETED",
            "review": "COMPLETED",
        }
        events = api.get(f"/v1/workflows/{workflow_id}/history").json()["events"]
        assert events[0]["type"] == "WorkflowStarted"
        assert events[-1]["type"] == "WorkflowCompleted"
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert api.get("/v1/human-tasks", params={"assignee": "alice"}).json()["results"] == []


def test_read_model_resumes_and_refolds(
    api_factory: Any, processor_thread: Processor, tmp_path: Any
) -> None:
    """A restarted API resumes its read model from the stored offsets; a shorter log refolds."""
    read_dir = tmp_path / "read"
    first = api_factory(read_dir=read_dir)
    with httpx.Client(base_url=first.url, timeout=10) as api:
        assert api.post("/v1/metadata/workflows", json=HUMAN_FLOW).status_code == 201
        started = api.post("/v1/workflows", json={"name": "api_review", "input": {"topic": "x"}})
        workflow_id = started.json()["workflowId"]
        assert_eventually(lambda: _status(api, workflow_id) == "RUNNING", timeout=20)
        folded = api.get("/v1/status").json()["eventsFolded"]
    first.stop()
    second = api_factory(read_dir=read_dir)
    with httpx.Client(base_url=second.url, timeout=10) as api:
        assert _status(api, workflow_id) == "RUNNING"
        assert api.get("/v1/status").json()["eventsFolded"] < folded
    second.stop()
    store = ReadStore(read_dir)
    store.write({}, {0: 10_000_000}, {"workflows": {}, "tasks": {}, "minutes": {}})
    store.close()
    third = api_factory(read_dir=read_dir)
    with httpx.Client(base_url=third.url, timeout=10) as api:
        assert _status(api, workflow_id) == "RUNNING"
        assert api.get("/v1/status").json()["eventsFolded"] >= folded
