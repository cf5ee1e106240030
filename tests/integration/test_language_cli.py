"""The workflow language through the command line: signals, sub-workflow checks, versions."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import RequestRejected, TaskStatus
from orchestrator.errors import WorkflowNotFoundError
from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually
from tests.integration.test_bad_input import cli

pytestmark = pytest.mark.integration

APPROVAL = {
    "name": "approval",
    "tasks": [
        {"name": "review", "taskReferenceName": "review", "type": "HUMAN"},
        {
            "name": "route",
            "taskReferenceName": "route",
            "type": "SWITCH",
            "evaluatorType": "value-param",
            "expression": "decision",
            "inputParameters": {"decision": "${review.output.decision}"},
            "decisionCases": {
                "approve": [
                    {
                        "name": "ok",
                        "taskReferenceName": "ok",
                        "type": "SET_VARIABLE",
                        "inputParameters": {"approved": True},
                    }
                ]
            },
            "defaultCase": [
                {
                    "name": "no",
                    "taskReferenceName": "no",
                    "type": "TERMINATE",
                    "inputParameters": {
                        "terminationStatus": "TERMINATED",
                        "terminationReason": "rejected",
                    },
                }
            ],
        },
    ],
    "outputParameters": {"approved": "${workflow.variables.approved}", "by": "${review.output.by}"},
}


def waiting(client: Client, workflow_id: str, ref: str) -> bool:
    """Whether the workflow's task ``ref`` exists and waits."""
    try:
        task = client.status(workflow_id).tasks.get(ref)
    except WorkflowNotFoundError:
        return False
    return task is not None and task.status is TaskStatus.SCHEDULED


def test_signal_completes_a_human_task_once(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """`orchestrator signal` completes a HUMAN task; a second signal is rejected in the log."""
    client.register([parse_definition(APPROVAL)])
    workflow_id = client.start("approval", workflow_id="approval-1")
    assert_eventually(lambda: waiting(client, workflow_id, "review"), timeout=30)
    first = cli(
        topics, "signal", workflow_id, "review", "--output", '{"decision": "approve", "by": "ana"}'
    )
    assert first.returncode == 0, first.stderr
    state = client.wait(workflow_id, timeout=30)
    assert (state.status, state.output) == ("COMPLETED", {"approved": True, "by": "ana"})
    second = cli(topics, "signal", workflow_id, "review", "--output", '{"decision": "reject"}')
    assert second.returncode == 0
    rejected = assert_eventually(
        lambda: [e for e in client.history(workflow_id) if isinstance(e, RequestRejected)],
        timeout=30,
    )
    assert "already COMPLETED" in rejected[0].reason
    then = cli(topics, "history", workflow_id, "--at", "2")
    assert then.returncode == 0, then.stderr
    assert orjson.loads(then.stdout)["status"] == "RUNNING"
    assert [t["ref_name"] for t in orjson.loads(then.stdout)["tasks"]] == ["review"]


def test_rejection_path_terminates(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """A reject decision takes the default case, whose TERMINATE ends the run TERMINATED."""
    client.register([parse_definition(APPROVAL)])
    workflow_id = client.start("approval", workflow_id="approval-2")
    assert_eventually(lambda: waiting(client, workflow_id, "review"), timeout=30)
    client.signal(workflow_id, "review", output={"decision": "reject", "by": "bo"})
    state = client.wait(workflow_id, timeout=30)
    assert (state.status, state.reason) == ("TERMINATED", "rejected")


def test_register_warns_of_missing_sub_workflow_and_refuses_cycles(
    topics: Settings, tmp_path: Path
) -> None:
    """A missing sub-workflow is a warning; a cycle of sub-workflows is an error naming it."""

    def sub(name: str, child: str) -> dict[str, object]:
        return {
            "name": name,
            "tasks": [
                {
                    "name": "s",
                    "taskReferenceName": "s",
                    "type": "SUB_WORKFLOW",
                    "subWorkflowParam": {"name": child, "version": 1},
                }
            ],
        }

    lonely = tmp_path / "lonely.json"
    lonely.write_bytes(orjson.dumps(sub("lonely", "nobody")))
    result = cli(topics, "definitions", "register", str(lonely))
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr
    assert "nobody" in result.stderr
    loop = tmp_path / "loop.json"
    loop.write_bytes(orjson.dumps([sub("ping", "pong"), sub("pong", "ping")]))
    result = cli(topics, "definitions", "register", str(loop))
    assert result.returncode == 1
    assert "sub-workflow cycle" in result.stderr


def test_versions_live_side_by_side(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """Two versions run side by side: the latest by default, an older one when named."""

    def version(number: int) -> object:
        return parse_definition(
            {
                "name": "versioned",
                "version": number,
                "tasks": [{"name": "n", "taskReferenceName": "n", "type": "NOOP"}],
                "outputParameters": {"v": number},
            }
        )

    client.register([version(1), version(2)])
    latest = client.wait(client.start("versioned"), timeout=30)
    pinned = client.wait(client.start("versioned", version=1), timeout=30)
    assert (latest.version, latest.output) == (2, {"v": 2})
    assert (pinned.version, pinned.output) == (1, {"v": 1})
