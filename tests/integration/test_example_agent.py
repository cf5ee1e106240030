"""The agent-loop example end to end: broker, processor and worker processes, the fake LLM.

The scripted model calls calculator, lookup and the research sub-workflow, then answers; a
model that never stops is cut at ``maxSteps``; a processor killed mid-loop changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from examples.agent import EXAMPLE, QUESTION
from examples.common import ExampleStack
from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.engine.records import Event, LoopIterated, TaskCompleted, TaskScheduled
from tests.helpers import assert_eventually
from tests.integration.conftest import shared_example_stack
from workers.llm.fake_server import FakeLLM

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ANSWER = (
    "6 * 7 = 42. Kafka is a distributed, partitioned, replicated commit log. Event sourcing "
    "keeps every change as an event in an append-only log and rebuilds the state by replaying it."
)
SCRIPTED_OUTPUT = {
    "answer": ANSWER,
    "steps": 4,
    "stoppedBy": "final_answer",
    "toolsUsed": ["calculator", "lookup", "research"],
}
#: The LLM calls and tools of the scripted run, in the order the history holds them.
SCRIPTED_STEPS = [
    ("think__1", "LLM_CHAT_COMPLETE"),
    ("use_tool__1", "calculator"),
    ("think__2", "LLM_CHAT_COMPLETE"),
    ("use_tool__2", "lookup"),
    ("think__3", "LLM_CHAT_COMPLETE"),
    ("research__3", "SUB_WORKFLOW"),
    ("think__4", "LLM_CHAT_COMPLETE"),
]
FOREVER = [
    {"reply": {"tool_calls": [{"name": "calculator", "arguments": {"expression": "1 + 1"}}]}}
]
Json = Any


def steps(history: list[Event]) -> list[tuple[str, str]]:
    """The LLM calls, tool tasks and sub-workflows a history scheduled, in order."""
    return [
        (e.task_id, e.task_type)
        for e in history
        if isinstance(e, TaskScheduled) and (e.worker or e.task_type == "SUB_WORKFLOW")
    ]


def completed(history: list[Event]) -> list[str]:
    """The ids of the tasks of :func:`steps` in the order they completed."""
    ids = {task_id for task_id, _ in steps(history)}
    return [e.task_id for e in history if isinstance(e, TaskCompleted) and e.task_id in ids]


def chats(llm: FakeLLM, since: int = 0) -> list[Json]:
    """The bodies of the chat requests the fake LLM received from request ``since`` on."""
    return [r.body for r in llm.requests[since:] if r.path == "/v1/chat/completions"]


def fake_of(stack: ExampleStack) -> FakeLLM:
    """The stack's fake LLM (these tests script it, so they need it rather than a real one)."""
    if stack.llm is None:
        pytest.skip("OPENAI_BASE_URL is set: these tests script the fake LLM")
    return stack.llm


@pytest.fixture(scope="module")
def shared_stack(module_topics: Settings) -> Iterator[ExampleStack]:
    """The example's stack, shared by the module's tests: each starts runs of its own ids."""
    with shared_example_stack(EXAMPLE, module_topics) as running:
        yield running


def test_scripted_run_uses_each_tool_then_answers(stack: ExampleStack) -> None:
    """Calculator, lookup and research run in order; the fourth step's answer ends the loop."""
    llm = fake_of(stack)
    asked = len(llm.requests)
    run = stack.start("agent-scripted")
    state = stack.finish(run)
    assert state.status == "COMPLETED", state.reason
    assert state.output == SCRIPTED_OUTPUT

    history = run.client.history(run.workflow_id)
    assert steps(history) == SCRIPTED_STEPS
    assert completed(history) == [task_id for task_id, _ in SCRIPTED_STEPS]
    loops = [e for e in history if isinstance(e, LoopIterated)]
    assert [(e.iteration, e.again) for e in loops] == [
        (1, True),
        (2, True),
        (3, True),
        (4, False),
    ]
    child = run.client.history(f"{run.workflow_id}.research__3.1")
    assert steps(child) == [("notes", "search_notes"), ("summarize", "LLM_CHAT_COMPLETE")]

    roles = [m["role"] for m in state.variables["messages"]]
    assert roles == ["system", "user", *["assistant", "tool"] * 3, "assistant"]
    agent_calls = [b for b in chats(llm, asked) if "tools" in b]
    assert len(agent_calls) == 4
    last = agent_calls[-1]["messages"]
    assert last[1] == {"role": "user", "content": QUESTION}
    tool_replies = [m for m in last if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_replies] == [
        "call_calculator",
        "call_lookup",
        "call_research",
    ]
    assert orjson.loads(tool_replies[0]["content"]) == {"expression": "6 * 7", "value": 42}
    assert orjson.loads(tool_replies[2]["content"])["sources"] == ["note-1", "note-2"]


def test_a_model_that_never_answers_stops_at_the_step_budget(stack: ExampleStack) -> None:
    """A model calling tools forever is cut after maxSteps steps, stoppedBy step_budget."""
    llm = fake_of(stack)
    llm.load(FOREVER)
    asked = len(llm.requests)
    run = stack.start("agent-budget", {"question": "count forever", "maxSteps": 3})
    state = stack.finish(run)
    assert state.status == "COMPLETED", state.reason
    assert state.output == {
        "answer": None,
        "steps": 3,
        "stoppedBy": "step_budget",
        "toolsUsed": ["calculator"] * 3,
    }
    history = run.client.history(run.workflow_id)
    assert [task_type for _, task_type in steps(history)] == [
        "LLM_CHAT_COMPLETE",
        "calculator",
    ] * 3
    loops = [e for e in history if isinstance(e, LoopIterated)]
    assert [e.again for e in loops] == [True, True, False]
    assert len(chats(llm, asked)) == 3


def test_a_processor_killed_mid_loop_changes_nothing(stack: ExampleStack) -> None:
    """Killing the processor after step 2's tool gives the uninterrupted run's output."""
    llm = fake_of(stack)
    reference = stack.start("agent-reference")
    expected = stack.finish(reference)
    assert expected.output == SCRIPTED_OUTPUT
    expected_steps = steps(reference.client.history(reference.workflow_id))

    # Step 3's LLM reply is slow, so the processor is down while it is being answered.
    script = orjson.loads(EXAMPLE.fake_script.read_bytes())  # type: ignore[union-attr]
    script["rules"][2]["delay_ms"] = 1500
    llm.load(script)
    asked = len(chats(llm))
    run = stack.start("agent-killed")
    assert_eventually(
        lambda: (tool := run.state().tasks.get("use_tool__2")) and tool.succeeded,
        timeout=60,
        message="step 2's tool did not complete",
    )
    stack.kill_processor()
    assert_eventually(
        lambda: len(chats(llm)) == asked + 3,
        timeout=30,
        message="step 3's LLM call did not reach the fake",
    )
    assert not run.state().status.terminal
    stack.start_processor()
    state = stack.finish(run)

    assert state.status == "COMPLETED", state.reason
    assert state.output == expected.output
    history = run.client.history(run.workflow_id)
    assert steps(history) == expected_steps
    scheduled = [e.task_id for e in history if isinstance(e, TaskScheduled)]
    assert len(scheduled) == len(set(scheduled)), "a task was scheduled twice"
    client = Client(stack.settings)
    try:
        assert state.variables == client.status(run.workflow_id).variables
    finally:
        client.close()
