"""The LangChain integration without a broker: output conversion, error mapping, WorkflowTool."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from orchestrator.dsl import parse_definition
from orchestrator.engine.records import WorkflowStatus
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import HandlerError, TerminalError, WorkflowTimeoutError
from orchestrator.worker import TaskContext, Worker

try:
    from langchain_core.exceptions import OutputParserException
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableConfig, RunnableLambda
    from langchain_core.tools import tool
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from workers.langchain import (
        RunnableInputError,
        RunnableOutputError,
        WorkflowTool,
        runnable_task,
        to_json,
    )
except ModuleNotFoundError as missing:
    pytest.skip(
        f"langchain-core is not installed ({missing.name}): pip install '.[langchain]'",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(30)

CTX = TaskContext(
    workflow_id="wf-1",
    task_id="task-1",
    task_type="chain",
    attempt=2,
    ref_name="chain_ref",
    workflow_name="demo",
)
FORECAST = parse_definition(
    {
        "name": "get.forecast",
        "description": "The weather forecast for a city.",
        "inputParameters": ["city", "days"],
        "tasks": [{"name": "noop", "taskReferenceName": "noop", "type": "NOOP"}],
    }
)


class Verdict(BaseModel):
    """A structured output, as with_structured_output returns it."""

    label: str
    score: float


@dataclasses.dataclass
class Point:
    """A dataclass output."""

    x: int
    y: int


class Runner:
    """A stand-in for the Client: records starts, ends each run as told."""

    def __init__(self, status: WorkflowStatus = WorkflowStatus.COMPLETED, **state: Any) -> None:
        self.status = status
        self.state = state
        self.started: list[tuple[str, int | None, Any]] = []

    def start(self, name: str, *, version: int | None = None, input: Any = None) -> str:
        """Record the start; the workflow id is its number."""
        self.started.append((name, version, input))
        return f"wf-{len(self.started)}"

    def wait(self, workflow_id: str, *, timeout: float = 60.0) -> WorkflowState:
        """The run's end: ``status`` with the state fields given."""
        if self.status is WorkflowStatus.RUNNING:
            raise WorkflowTimeoutError(f"workflow {workflow_id} did not finish")
        return WorkflowState(
            workflow_id=workflow_id, name="x", version=1, status=self.status, **self.state
        )


def run(handler: Any, task_input: Any) -> Any:
    """Await a registered handler once, with the test's task context."""
    return asyncio.run(handler(task_input, CTX))


def test_messages_become_role_and_content() -> None:
    """Messages convert to OpenAI roles and content; AI tool calls and tool answers are kept."""
    call = {"id": "c1", "name": "lookup", "args": {"q": "kafka"}, "type": "tool_call"}
    assert to_json(
        [
            SystemMessage("be brief"),
            HumanMessage("hi"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("found", tool_call_id="c1"),
        ]
    ) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "",
            "toolCalls": [{"id": "c1", "name": "lookup", "arguments": {"q": "kafka"}}],
        },
        {"role": "tool", "content": "found", "toolCallId": "c1"},
    ]


def test_models_dataclasses_and_containers_convert() -> None:
    """Pydantic models and dataclasses dump; mappings and tuples convert item by item."""
    value = {"verdict": Verdict(label="spam", score=0.9), "at": (Point(1, 2), "s", None)}
    assert to_json(value) == {
        "verdict": {"label": "spam", "score": 0.9},
        "at": [{"x": 1, "y": 2}, "s", None],
    }


def test_values_without_a_json_form_are_refused() -> None:
    """An object or a non-string key has no JSON form: a terminal RunnableOutputError."""
    with pytest.raises(RunnableOutputError, match="returned a object"):
        to_json(object())
    with pytest.raises(RunnableOutputError, match="int key"):
        to_json({1: "one"})
    assert issubclass(RunnableOutputError, TerminalError)


def test_a_chain_serves_the_task_input() -> None:
    """A lambda | prompt | chat model chain gets the task input; its AI message is the output."""
    model = FakeMessagesListChatModel(responses=[AIMessage("Partitions hold the log.")])
    prompt = ChatPromptTemplate.from_messages([("human", "Explain {topic}")])
    chain = RunnableLambda(lambda task: {"topic": task["topic"].upper()}) | prompt | model
    worker = Worker("lc")
    handler = runnable_task(worker, "explain", chain)
    assert worker.task_types == ("explain",)
    assert run(handler, {"topic": "kafka"}) == {
        "output": {"role": "assistant", "content": "Partitions hold the log."}
    }


def test_input_key_and_output_key_select_what_goes_in_and_out() -> None:
    """``input_key`` hands one input item to the runnable; ``output_key`` names the output."""
    handler = runnable_task(
        Worker("lc"), "shout", RunnableLambda(str.upper), input_key="text", output_key="loud"
    )
    assert run(handler, {"text": "hey", "other": 1}) == {"loud": "HEY"}
    with pytest.raises(RunnableInputError, match="no 'text'"):
        run(handler, {"other": 1})


def test_the_run_carries_the_task_as_metadata() -> None:
    """The runnable's config is tagged and carries the workflow and task ids as metadata."""

    def metadata(_: Any, config: RunnableConfig) -> Any:
        return {"tags": config.get("tags"), **config.get("metadata", {})}

    handler = runnable_task(Worker("lc"), "chain", RunnableLambda(metadata))
    output = run(handler, {})["output"]
    assert "orchestrator" in output["tags"]
    assert {k: output[k] for k in ("workflow_id", "task_id", "attempt")} == {
        "workflow_id": "wf-1",
        "task_id": "task-1",
        "attempt": 2,
    }


def test_value_errors_are_terminal_and_other_errors_retryable() -> None:
    """ValueError fails for good; OutputParserException and other errors fail the attempt."""

    def bad_input(_: Any) -> Any:
        raise ValueError("no such city")

    def bad_reply(_: Any) -> Any:
        raise OutputParserException("not JSON: 'Sure!'")

    def down(_: Any) -> Any:
        raise ConnectionError("provider unreachable")

    def refused(_: Any) -> Any:
        raise TerminalError("quota exhausted for good")

    worker = Worker("lc")
    with pytest.raises(RunnableInputError, match="ValueError: no such city"):
        run(runnable_task(worker, "a", RunnableLambda(bad_input)), {})
    with pytest.raises(OutputParserException):
        run(runnable_task(worker, "b", RunnableLambda(bad_reply)), {})
    with pytest.raises(ConnectionError):
        run(runnable_task(worker, "c", RunnableLambda(down)), {})
    with pytest.raises(TerminalError, match="quota") as refusal:
        run(runnable_task(worker, "d", RunnableLambda(refused)), {})
    assert type(refusal.value) is TerminalError


def test_a_tool_serves_the_task_and_its_argument_check_is_terminal() -> None:
    """A @tool is a runnable: valid input runs it; input its schema refuses fails for good."""

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    handler = runnable_task(Worker("lc"), "add", add)
    assert run(handler, {"a": 2, "b": 3}) == {"output": 5}
    with pytest.raises(RunnableInputError, match="ValidationError"):
        run(handler, {"a": "two", "b": 3})


def test_a_task_type_is_registered_once() -> None:
    """Registering a second runnable for the same task type is refused by the Worker."""
    worker = Worker("lc")
    runnable_task(worker, "once", RunnableLambda(str))
    with pytest.raises(HandlerError, match="already has a handler"):
        runnable_task(worker, "once", RunnableLambda(str))


def test_workflow_tool_schema_comes_from_the_definition() -> None:
    """The tool's name, description and arguments come from the definition's inputParameters."""
    function = convert_to_openai_tool(WorkflowTool.from_definition(Runner(), FORECAST))["function"]
    assert function["name"] == "get_forecast"
    assert function["description"] == "The weather forecast for a city."
    assert sorted(function["parameters"]["properties"]) == ["city", "days"]
    bare = WorkflowTool(client=Runner(), workflow_name="any", name="any", description="Any.")
    assert convert_to_openai_tool(bare)["function"]["parameters"]["additionalProperties"] is True


def test_workflow_tool_starts_the_run_and_returns_its_output() -> None:
    """A call starts this version with the arguments (None left out); the output comes back."""
    runner = Runner(output={"forecast": "sunny"})
    forecast = WorkflowTool.from_definition(runner, FORECAST)
    assert forecast.invoke({"city": "Paris", "days": None}) == {"forecast": "sunny"}
    assert runner.started == [("get.forecast", 1, {"city": "Paris"})]
    message = forecast.invoke(
        {"name": "get_forecast", "args": {"city": "Oslo"}, "id": "c7", "type": "tool_call"}
    )
    assert (message.tool_call_id, message.content) == ("c7", '{"forecast": "sunny"}')
    assert message.artifact == {"workflowId": "wf-2", "status": "COMPLETED"}


def test_workflow_tool_reports_a_failed_or_late_run_as_a_tool_error() -> None:
    """A run ending FAILED, or not in time, becomes an error ToolMessage naming the run."""
    call = {"name": "get_forecast", "args": {"city": "Atlantis"}, "id": "c1", "type": "tool_call"}
    failed = WorkflowTool.from_definition(
        Runner(WorkflowStatus.FAILED, reason="no such city"), FORECAST
    )
    message = failed.invoke(call)
    assert message.status == "error"
    assert message.content == "workflow get.forecast (wf-1) ended FAILED: no such city"
    late = WorkflowTool.from_definition(Runner(WorkflowStatus.RUNNING), FORECAST, timeout=2)
    assert "did not finish within 2 s" in late.invoke(call).content
