"""Review escalation and continue-as-new sessions on the real broker, processor and API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

ESCALATING_REVIEW = {
    "name": "escalating_review",
    "version": 1,
    "tasks": [
        {
            "name": "review",
            "taskReferenceName": "review",
            "type": "HUMAN",
            "inputParameters": {
                "assignee": "alice",
                "dueIn": "1s",
                "escalation": [{"assignee": "bob", "dueIn": "${workflow.input.bobHas}"}],
                "draft": "${workflow.input.draft}",
            },
        }
    ],
    "outputParameters": {"approved": "${review.output.approved}"},
}

CHAT = {
    "name": "chat_session",
    "version": 1,
    "tasks": [
        {"name": "message", "taskReferenceName": "message", "type": "WAIT"},
        {
            "name": "remember",
            "taskReferenceName": "remember",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "expression": "$.said.concat([$.text])",
                "said": "${workflow.input.said}",
                "text": "${message.output.text}",
            },
        },
        {
            "name": "more",
            "taskReferenceName": "more",
            "type": "SWITCH",
            "evaluatorType": "javascript",
            "expression": "$.text == 'bye' ? 'end' : 'next'",
            "inputParameters": {"text": "${message.output.text}"},
            "decisionCases": {
                "next": [
                    {
                        "name": "carry",
                        "taskReferenceName": "carry",
                        "type": "CONTINUE_AS_NEW",
                        "inputParameters": {"input": {"said": "${remember.output.result}"}},
                    }
                ]
            },
        },
    ],
    "outputParameters": {"said": "${remember.output.result}"},
}


def _run(api: httpx.Client, workflow_id: str) -> Any:
    response = api.get(f"/v1/workflows/{workflow_id}")
    return response.json() if response.status_code == 200 else None


def _waiting(api: httpx.Client, workflow_id: str, ref: str) -> bool:
    run = _run(api, workflow_id)
    return bool(run) and any(t["refName"] == ref and t["awaitingSignal"] for t in run["tasks"])


def _start_review(api: httpx.Client, *, bob_has: str) -> str:
    """Register the escalating review and start it; bob gets ``bob_has`` after alice's 1 s."""
    assert api.post("/v1/metadata/workflows", json=ESCALATING_REVIEW).status_code == 201
    started = api.post(
        "/v1/workflows",
        json={"name": "escalating_review", "input": {"bobHas": bob_has, "draft": "d"}},
    )
    return str(started.json()["workflowId"])


def _inbox(api: httpx.Client, assignee: str) -> list[Any]:
    return list(api.get("/v1/human-tasks", params={"assignee": assignee}).json()["results"])


def test_an_overdue_review_moves_to_the_next_reviewer_who_answers(
    api_server: str, processor_thread: Processor
) -> None:
    """alice lets it pass its due time; the task moves to bob's inbox; bob approves."""
    with httpx.Client(base_url=api_server, timeout=10) as api:
        workflow_id = _start_review(api, bob_has="1h")
        rows = assert_eventually(lambda: _inbox(api, "bob"), timeout=30)
        assert rows[0]["workflowId"] == workflow_id
        assert rows[0]["escalationLevel"] == 1
        assert rows[0]["dueAt"] > rows[0]["scheduledTime"] + 3_000_000
        assert _inbox(api, "alice") == []
        done = api.post(
            f"/v1/human-tasks/{workflow_id}/review/complete", json={"output": {"approved": True}}
        )
        assert done.status_code == 202, done.text
        run = assert_eventually(
            lambda: (r := _run(api, workflow_id)) and r["status"] == "COMPLETED" and r, timeout=20
        )
        assert run["output"] == {"approved": True}
        events = api.get(f"/v1/workflows/{workflow_id}/history").json()["events"]
        kinds = [e["type"] for e in events]
        assert kinds == [
            "WorkflowStarted",
            "TaskScheduled",
            "TaskReassigned",
            "TaskCompleted",
            "WorkflowCompleted",
        ]
        reassigned = events[2]
        assert (reassigned["assignee"], reassigned["level"]) == ("bob", 1)
        assert reassigned["reason"] == "overdue: alice did not answer in time"


def test_a_review_nobody_answers_fails_the_workflow(
    api_server: str, processor_thread: Processor
) -> None:
    """Past the last escalation step the review times out and the run fails, saying why."""
    with httpx.Client(base_url=api_server, timeout=10) as api:
        workflow_id = _start_review(api, bob_has="1s")
        run = assert_eventually(
            lambda: (r := _run(api, workflow_id)) and r["status"] == "FAILED" and r, timeout=30
        )
        [review] = run["tasks"]
        assert review["status"] == "TIMED_OUT"
        assert review["reason"] == "review overdue: bob did not answer in time"
        assert _inbox(api, "bob") == []


def test_a_session_continues_as_new_and_signals_follow_it(
    api_server: str, processor_thread: Processor
) -> None:
    """Each message ends a run and starts the next with the state; signals to the first id
    reach the run that waits now; the chain is linked both ways."""
    with httpx.Client(base_url=api_server, timeout=10) as api:
        assert api.post("/v1/metadata/workflows", json=CHAT).status_code == 201
        api.post(
            "/v1/workflows",
            json={
                "name": "chat_session",
                "workflowId": "chat-1",
                "input": {"said": []},
                "correlationId": "user-7",
            },
        )
        for text, run_id in (("hello", "chat-1"), ("order 42", "chat-1~2"), ("bye", "chat-1~3")):
            assert_eventually(lambda r=run_id: _waiting(api, r, "message"), timeout=30)
            sent = api.post(
                "/v1/workflows/chat-1/signal",
                json={"taskRef": "message", "output": {"text": text}},
            )
            assert sent.status_code == 202, sent.text
        last = assert_eventually(
            lambda: (r := _run(api, "chat-1~3")) and r["status"] == "COMPLETED" and r, timeout=30
        )
        assert last["output"] == {"said": ["hello", "order 42", "bye"]}
        assert last["continuedFrom"] == "chat-1~2"
        assert last["continuedAs"] is None
        second = _run(api, "chat-1~2")
        assert second["input"] == {"said": ["hello"]}
        assert (second["continuedFrom"], second["continuedAs"]) == ("chat-1", "chat-1~3")
        first = _run(api, "chat-1")
        assert (first["status"], first["continuedAs"]) == ("COMPLETED", "chat-1~2")
        found = api.get("/v1/workflows", params={"correlationId": "user-7"}).json()
        assert {r["workflowId"] for r in found["results"]} == {"chat-1", "chat-1~2", "chat-1~3"}
        forwarded = [
            e
            for e in api.get("/v1/workflows/chat-1/history").json()["events"]
            if e["type"] == "SignalForwarded"
        ]
        assert [e["to_workflow_id"] for e in forwarded] == ["chat-1~2", "chat-1~2"]
