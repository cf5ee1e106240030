"""Workers end to end with the processor: outputs fed from task to task, failures, async handlers.

The tests share topics and a processor thread; each runs workflows of its own names, served by a
worker of its own task types. The worker alone is tested in ``test_worker``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import workers
from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import load_definition_file, parse_definition
from orchestrator.engine.records import TaskFailed, WorkflowFailed, WorkflowStatus
from orchestrator.processor.loop import Processor
from orchestrator.worker import TaskContext, TerminalError, Worker
from tests.integration.test_worker import WAIT_S, running
from workers.examples import worker as example_worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topics(module_topics: Settings) -> Settings:
    """The topics the module's tests share (``client`` is a client of them)."""
    return module_topics


def test_three_task_workflow_completes_with_expected_output(
    module_processor: Processor, client: Client, topics: Settings
) -> None:
    """A workflow of three worker tasks completes with outputs fed from task to task."""
    worker = Worker(name="trio")

    @worker.task("fetch_data")
    def fetch(task_input: dict[str, int]) -> dict[str, list[int]]:
        start = task_input["start"]
        return {"items": [start, start + 1, start + 2]}

    @worker.task("scale")
    def scale(task_input: dict[str, Any]) -> list[int]:
        return [item * task_input["factor"] for item in task_input["items"]]

    @worker.task("summarize")
    def summarize(task_input: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        return {"total": sum(task_input["values"]), "by": ctx.ref_name}

    client.register(
        [
            parse_definition(
                {
                    "name": "trio",
                    "tasks": [
                        {
                            "name": "fetch_data",
                            "taskReferenceName": "fetch",
                            "inputParameters": {"start": "${workflow.input.start}"},
                        },
                        {
                            "name": "scale",
                            "taskReferenceName": "scale",
                            "inputParameters": {"items": "${fetch.output.items}", "factor": 10},
                        },
                        {
                            "name": "summarize",
                            "taskReferenceName": "sum",
                            "inputParameters": {"values": "${scale.output.result}"},
                        },
                    ],
                    "outputParameters": {"total": "${sum.output.total}", "by": "${sum.output.by}"},
                }
            )
        ]
    )
    with running(worker, topics):
        workflow_id = client.start("trio", input={"start": 4})
        state = client.wait(workflow_id, timeout=WAIT_S)
    assert state.status is WorkflowStatus.COMPLETED
    assert state.output == {"total": 150, "by": "sum"}


def test_failing_handler_fails_the_workflow_with_type_and_message(
    module_processor: Processor, client: Client, topics: Settings
) -> None:
    """A raised exception shows in TaskFailed (type, message) and in the WorkflowFailed reason."""
    worker = Worker(name="failing")

    @worker.task("explode")
    def explode(task_input: dict[str, Any]) -> None:
        if task_input.get("terminal"):
            raise TerminalError("input can never work")
        raise ValueError("disk on fire")

    client.register(
        [
            parse_definition(
                {
                    "name": "boom",
                    "tasks": [
                        {
                            "name": "explode",
                            "taskReferenceName": "explode",
                            "inputParameters": {"terminal": "${workflow.input.terminal}"},
                        }
                    ],
                }
            )
        ]
    )
    with running(worker, topics):
        retryable = client.start("boom", input={"terminal": False})
        terminal = client.start("boom", input={"terminal": True})
        assert client.wait(retryable, timeout=WAIT_S).status is WorkflowStatus.FAILED
        assert client.wait(terminal, timeout=WAIT_S).status is WorkflowStatus.FAILED
    history = client.history(retryable)
    [task_failed] = [e for e in history if isinstance(e, TaskFailed)]
    [workflow_failed] = [e for e in history if isinstance(e, WorkflowFailed)]
    assert (task_failed.error_type, task_failed.reason, task_failed.terminal) == (
        "ValueError",
        "disk on fire",
        False,
    )
    assert "disk on fire" in workflow_failed.reason
    [terminal_failed] = [e for e in client.history(terminal) if isinstance(e, TaskFailed)]
    assert (terminal_failed.error_type, terminal_failed.terminal) == ("TerminalError", True)
    assert terminal_failed.reason == "input can never work"


def test_async_handler_completes_with_its_context(
    module_processor: Processor, client: Client, topics: Settings
) -> None:
    """An async handler runs on the worker's loop and sees the task's context."""
    worker = Worker(name="async")

    @worker.task("think")
    async def think(task_input: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {
            "answer": task_input["question"].upper(),
            "workflow_id": ctx.workflow_id,
            "ref": ctx.ref_name,
            "workflow_name": ctx.workflow_name,
            "attempt": ctx.attempt,
        }

    client.register(
        [
            parse_definition(
                {
                    "name": "ask",
                    "tasks": [
                        {
                            "name": "think",
                            "taskReferenceName": "thought",
                            "inputParameters": {"question": "${workflow.input.q}"},
                        }
                    ],
                    "outputParameters": {"out": "${thought.output}"},
                }
            )
        ]
    )
    with running(worker, topics):
        workflow_id = client.start("ask", input={"q": "why"})
        state = client.wait(workflow_id, timeout=WAIT_S)
    assert state.status is WorkflowStatus.COMPLETED
    assert state.output == {
        "out": {
            "answer": "WHY",
            "workflow_id": workflow_id,
            "ref": "thought",
            "workflow_name": "ask",
            "attempt": 1,
        }
    }


def test_example_content_pipeline_publishes_the_article(
    module_processor: Processor, client: Client, topics: Settings
) -> None:
    """The example workers run the shipped content_pipeline.json to a published article."""
    definitions = load_definition_file(Path(workers.__file__).parent / "content_pipeline.json")
    client.register(definitions)
    with running(example_worker, topics):
        workflow_id = client.start("content_pipeline", input={"topic": "vector databases"})
        state = client.wait(workflow_id, timeout=WAIT_S)
    assert state.status is WorkflowStatus.COMPLETED
    assert state.output == {
        "url": "https://example.com/articles/vector-databases-a-friendly-overview",
        "title": "Vector Databases: A Friendly Overview",
        "score": 0.87,
        "sources": [f"https://example.org/vector-databases/{n}" for n in (1, 2, 3)],
    }
