"""LangChain on the real broker: a chain serving a SIMPLE task, an agent calling a workflow tool.

The chat model is a small OpenAI-compatible ``BaseChatModel`` that talks to the fake OpenAI
server on loopback (``workers.llm.fake_server``); everything else is langchain-core itself.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
from pydantic import Field

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import TaskCompleted, TaskFailed, TaskScheduled, WorkflowStarted
from orchestrator.processor.loop import Processor
from orchestrator.worker import Worker
from workers.llm.fake_server import FakeLLM

try:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        HumanMessage,
        ToolMessage,
        convert_to_openai_messages,
    )
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from workers.langchain import WorkflowTool, runnable_task
except ModuleNotFoundError as missing:
    pytest.skip(
        f"langchain-core is not installed ({missing.name}): pip install '.[langchain]'",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 60.0


class FakeServerChat(BaseChatModel):
    """A chat model on any OpenAI-compatible ``/chat/completions`` (here the fake server)."""

    base_url: str
    model: str = "fake-chat"
    tools: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible-test"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": convert_to_openai_messages(messages),
        }
        if self.tools:
            body["tools"] = self.tools
        reply = httpx.post(f"{self.base_url}/chat/completions", json=body, timeout=10)
        reply.raise_for_status()
        message = reply.json()["choices"][0]["message"]
        calls = [
            {
                "id": call["id"],
                "name": call["function"]["name"],
                "args": orjson.loads(call["function"]["arguments"]),
            }
            for call in message.get("tool_calls") or []
        ]
        answer = AIMessage(content=message["content"] or "", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=answer)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeServerChat:
        """This model, sending ``tools`` with every request."""
        return self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools]})


@contextlib.contextmanager
def running(worker: Worker, settings: Settings) -> Iterator[None]:
    """Serve ``worker`` on a thread for the block; stop and join it after."""
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(settings,), kwargs={"stop": stop}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"


HAIKU = parse_definition(
    {
        "name": "lc_haiku",
        "tasks": [
            {
                "name": "lc_write",
                "taskReferenceName": "write",
                "type": "SIMPLE",
                "inputParameters": {"topic": "${workflow.input.topic}", "style": "haiku"},
                "taskDefinition": {"name": "lc_write", "retryCount": 1, "retryDelaySeconds": 0},
            }
        ],
        "outputParameters": {
            "poem": "${write.output.output.content}",
            "role": "${write.output.output.role}",
        },
    }
)
FORECAST = parse_definition(
    {
        "name": "forecast",
        "description": "The weather forecast for a city, for a number of days.",
        "inputParameters": ["city", "days"],
        "tasks": [
            {
                "name": "known",
                "taskReferenceName": "known",
                "type": "SWITCH",
                "evaluatorType": "value-param",
                "expression": "city",
                "inputParameters": {"city": "${workflow.input.city}"},
                "decisionCases": {
                    "Atlantis": [
                        {
                            "name": "fail",
                            "taskReferenceName": "fail",
                            "type": "TERMINATE",
                            "inputParameters": {
                                "terminationStatus": "FAILED",
                                "terminationReason": "no forecast for Atlantis",
                            },
                        }
                    ]
                },
                "defaultCase": [],
            },
            {
                "name": "shape",
                "taskReferenceName": "shape",
                "type": "INLINE",
                "inputParameters": {
                    "evaluatorType": "javascript",
                    "expression": "({city: $.city, sky: 'sunny', days: $.days})",
                    "city": "${workflow.input.city}",
                    "days": "${workflow.input.days}",
                },
            },
        ],
        "outputParameters": {"forecast": "${shape.output.result}"},
    }
)


def test_a_chain_serves_a_simple_task_and_a_failed_attempt_is_retried(
    client: Client, processor_thread: Processor, topics: Settings
) -> None:
    """lambda | prompt | chat model answers a SIMPLE task; a 503 fails one attempt, retried."""
    script = [
        {"match": "about kafka", "status": 503, "error": "overloaded", "times": 1},
        {"match": "haiku about kafka", "reply": "Offsets mark the past"},
    ]
    with FakeLLM(script) as fake:
        prompt = ChatPromptTemplate.from_messages(
            [("system", "You write a {style}."), ("human", "Write a {style} about {topic}")]
        )
        normalize = RunnableLambda(lambda task: {**task, "topic": task["topic"].strip().lower()})
        worker = Worker("langchain")
        runnable_task(
            worker, "lc_write", normalize | prompt | FakeServerChat(base_url=fake.base_url)
        )
        client.register([HAIKU])
        with running(worker, topics):
            workflow_id = client.start("lc_haiku", input={"topic": "  Kafka "})
            state = client.wait(workflow_id, timeout=WAIT_S)
        chats = [r.body for r in fake.requests if r.path == "/v1/chat/completions"]

    assert state.status == "COMPLETED", state.reason
    assert state.output == {"poem": "Offsets mark the past", "role": "assistant"}
    history = client.history(workflow_id)
    scheduled = [e.attempt for e in history if isinstance(e, TaskScheduled)]
    failed = [e for e in history if isinstance(e, TaskFailed)]
    completed = [e for e in history if isinstance(e, TaskCompleted)]
    assert scheduled == [1, 2]
    assert [(f.attempt, f.retrying, f.terminal, f.error_type) for f in failed] == [
        (1, True, False, "HTTPStatusError")
    ]
    assert "503" in failed[0].reason
    assert [(c.attempt, c.output) for c in completed] == [
        (2, {"output": {"role": "assistant", "content": "Offsets mark the past"}})
    ]
    assert len(chats) == 2
    assert chats[1]["messages"] == [
        {"role": "system", "content": "You write a haiku."},
        {"role": "user", "content": "Write a haiku about kafka"},
    ]


def test_an_agent_runs_a_workflow_through_a_workflow_tool(
    client: Client, processor_thread: Processor
) -> None:
    """A model's tool call starts the workflow; its output goes back and the model answers."""
    script = [
        {
            "match": "weather in Paris",
            "times": 1,
            "reply": {
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "name": "forecast", "arguments": {"city": "Paris", "days": 2}}
                ],
            },
        },
        {"match": '"sky": "sunny"', "scope": "any", "reply": "Sunny in Paris for two days."},
    ]
    client.register([FORECAST])
    forecast = WorkflowTool.from_definition(client, FORECAST, timeout=WAIT_S)
    with FakeLLM(script) as fake:
        model = FakeServerChat(base_url=fake.base_url).bind_tools([forecast])
        messages: list[BaseMessage] = [HumanMessage("What is the weather in Paris for 2 days?")]
        for _ in range(3):  # the agent loop: call the model, run its tool calls, repeat
            reply = model.invoke(messages)
            messages.append(reply)
            if not reply.tool_calls:
                break
            messages.extend(forecast.invoke(call) for call in reply.tool_calls)
        first_request = fake.requests[0].body

    assert messages[-1].content == "Sunny in Paris for two days."
    result = messages[2]
    assert isinstance(result, ToolMessage)
    assert (result.tool_call_id, result.status) == ("call_1", "success")
    assert orjson.loads(result.content) == {
        "forecast": {"city": "Paris", "sky": "sunny", "days": 2}
    }
    assert result.artifact["status"] == "COMPLETED"
    started = [
        e for e in client.history(result.artifact["workflowId"]) if isinstance(e, WorkflowStarted)
    ]
    assert [e.input for e in started] == [{"city": "Paris", "days": 2}]
    parameters = first_request["tools"][0]["function"]["parameters"]
    assert sorted(parameters["properties"]) == ["city", "days"]

    call = {"name": "forecast", "args": {"city": "Atlantis"}, "id": "call_2", "type": "tool_call"}
    refusal = forecast.invoke(call)
    assert refusal.status == "error"
    assert refusal.content.startswith("workflow forecast (")
    assert refusal.content.endswith(") ended FAILED: no forecast for Atlantis")
