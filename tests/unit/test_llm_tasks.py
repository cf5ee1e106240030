"""The LLM task handlers over real HTTP to the fake OpenAI server on loopback (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import workers.llm
from orchestrator.errors import TerminalError
from workers.llm import JsonVectorStore, LlmConfig, LlmWorker
from workers.llm.errors import (
    LlmError,
    LlmRejectedError,
    LlmReplyError,
    LlmTimeoutError,
    LlmUnavailableError,
)
from workers.llm.fake_server import FakeLLM

pytestmark = pytest.mark.timeout(30)

KEY = "sk-unit-secret"
USER = [{"role": "user", "content": "Summarize the report"}]
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "score": {"type": "number"}},
    "required": ["title", "score"],
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    """One fake server for the module; each test loads its own script."""
    with FakeLLM() as server:
        yield server


@pytest.fixture
def llm(fake: FakeLLM, tmp_path: Path) -> LlmWorker:
    """An LlmWorker configured for the fake, with a JSON index under tmp_path."""
    fake.load(None)
    config = LlmConfig(base_url=fake.base_url, api_key=KEY, model="chat-m", embedding_model="emb-m")
    return LlmWorker(config=config, store=JsonVectorStore(tmp_path))


def run(handler: Callable[[Any], Awaitable[Any]], task_input: Any) -> Any:
    """Run an async handler to completion."""
    return asyncio.run(handler(task_input))


def failure(handler: Callable[[Any], Awaitable[Any]], task_input: Any) -> Exception:
    """The exception an async handler raises."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each test checks the type itself
        run(handler, task_input)
    return caught.value


def test_chat_sends_openai_request_and_outputs_result_usage_and_model(
    fake: FakeLLM, llm: LlmWorker
) -> None:
    """A chat call posts OpenAI's body with the key and returns text, usage and model."""
    fake.load([{"match": "Summarize", "reply": "A short summary."}])
    output = run(llm.chat_complete, {"messages": USER, "temperature": 0, "maxTokens": 20})
    assert output == {
        "result": "A short summary.",
        "toolCalls": [],
        "message": {"role": "assistant", "content": "A short summary."},
        "finishReason": "stop",
        "usage": {"promptTokens": 3, "completionTokens": 3, "totalTokens": 6},
        "model": "chat-m",
    }
    sent = fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {"model": "chat-m", "messages": USER, "temperature": 0.0, "max_tokens": 20}


def test_structured_output_is_parsed_and_validated(fake: FakeLLM, llm: LlmWorker) -> None:
    """With jsonSchema the reply is parsed into `result` and response_format is sent."""
    fake.load([{"match": "Summarize", "json": {"title": "Q3", "score": 0.8}}])
    output = run(llm.chat_complete, {"messages": USER, "jsonSchema": SCHEMA, "model": "other"})
    assert output["result"] == {"title": "Q3", "score": 0.8}
    body = fake.requests[-1].body
    assert body["model"] == "other"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA


def test_reply_breaking_the_schema_fails_the_attempt_retryably(
    fake: FakeLLM, llm: LlmWorker
) -> None:
    """A reply missing a required field is a retryable LlmReplyError naming the violation."""
    fake.load([{"match": "Summarize", "json": {"title": "Q3"}}])
    error = failure(llm.chat_complete, {"messages": USER, "jsonSchema": SCHEMA})
    assert isinstance(error, LlmReplyError)
    assert not isinstance(error, TerminalError)
    assert "does not match jsonSchema at $: 'score' is a required property" in str(error)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (429, LlmUnavailableError),
        (500, LlmUnavailableError),
        (503, LlmUnavailableError),
        (400, LlmRejectedError),
        (401, LlmRejectedError),
        (404, LlmRejectedError),
    ],
)
def test_status_decides_retryable_or_terminal(
    fake: FakeLLM, llm: LlmWorker, status: int, error_type: type[Exception]
) -> None:
    """429 and 5xx fail the attempt retryably; other 4xx fail the task for good."""
    fake.load([{"status": status, "error": f"scripted {status}"}])
    error = failure(llm.chat_complete, {"messages": USER})
    assert type(error) is error_type
    assert isinstance(error, TerminalError) == (status not in (429, 500, 503))
    assert f"HTTP {status}" in str(error)
    assert f"scripted {status}" in str(error)


def test_timeout_fails_the_attempt_saying_it_timed_out(fake: FakeLLM, llm: LlmWorker) -> None:
    """A reply slower than timeoutSeconds is a retryable LlmTimeoutError."""
    fake.load([{"delay_ms": 1500, "reply": "late"}])
    error = failure(llm.chat_complete, {"messages": USER, "timeoutSeconds": 0.3})
    assert isinstance(error, LlmTimeoutError)
    assert isinstance(error, LlmError)
    assert "timed out after 0.3 s (timeoutSeconds)" in str(error)


def test_tool_calls_are_parsed(fake: FakeLLM, llm: LlmWorker) -> None:
    """Scripted tool calls come out with their ids, names and parsed arguments."""
    fake.load(
        [
            {
                "match": "weather",
                "reply": {
                    "content": None,
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Oslo"}},
                        {"id": "x9", "name": "get_time", "arguments": '{"tz": "CET"}'},
                    ],
                },
            }
        ]
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    output = run(
        llm.chat_complete,
        {
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": tools,
            "toolChoice": "auto",
        },
    )
    assert output["toolCalls"] == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}},
        {"id": "x9", "name": "get_time", "arguments": {"tz": "CET"}},
    ]
    assert (output["result"], output["finishReason"]) == (None, "tool_calls")
    raw = output["message"]["tool_calls"]
    assert raw[1] == {
        "id": "x9",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
    }
    assert fake.requests[-1].body["tools"] == tools


def test_api_key_never_appears_in_a_failure_reason(fake: FakeLLM, llm: LlmWorker) -> None:
    """A provider echoing the key in its error message gets it masked."""
    fake.load([{"status": 401, "error": f"Incorrect API key provided: {KEY}"}])
    error = failure(llm.chat_complete, {"messages": USER})
    assert KEY not in str(error)
    assert "Incorrect API key provided: ***" in str(error)


def test_key_is_not_sent_to_a_base_url_on_another_origin(fake: FakeLLM, tmp_path: Path) -> None:
    """A task's baseUrl elsewhere than the configured provider is called without the key."""
    fake.load(None)
    config = LlmConfig(base_url="https://api.example/v1", api_key=KEY, model="m")
    worker = LlmWorker(config=config, store=JsonVectorStore(tmp_path))
    output = run(worker.chat_complete, {"messages": USER, "baseUrl": fake.base_url})
    assert output["result"] == "echo: Summarize the report"
    assert "authorization" not in fake.requests[-1].headers


def test_text_completion_and_embeddings(fake: FakeLLM, llm: LlmWorker) -> None:
    """LLM_TEXT_COMPLETE honours maxTokens; LLM_EMBED returns one vector per text, in order."""
    fake.load([{"match": "Once", "reply": "upon a time there was"}])
    text = run(llm.text_complete, {"prompt": "Once", "maxTokens": 3})
    assert (text["result"], text["finishReason"]) == ("upon a time", "length")
    assert fake.requests[-1].body == {"model": "chat-m", "prompt": "Once", "max_tokens": 3}
    embedded = run(llm.embed, {"texts": ["a b", "c"], "dimensions": 16})
    assert [len(v) for v in embedded["embeddings"]] == [16, 16]
    assert embedded["usage"] == {"promptTokens": 3, "completionTokens": 0, "totalTokens": 3}
    assert fake.requests[-1].body == {"model": "emb-m", "input": ["a b", "c"], "dimensions": 16}


def test_index_then_search_finds_the_nearest_document(
    fake: FakeLLM, llm: LlmWorker, tmp_path: Path
) -> None:
    """LLM_INDEX embeds and stores documents; LLM_SEARCH ranks them by cosine similarity."""
    documents = [
        {"id": "kafka", "text": "Kafka keeps offsets per partition", "metadata": {"src": "k"}},
        {"id": "bread", "text": "Sourdough bread needs a starter"},
    ]
    indexed = run(llm.index, {"index": "kb", "documents": documents})
    assert (indexed["indexed"], indexed["ids"]) == (2, ["kafka", "bread"])
    assert (tmp_path / "kb.json").exists()
    found = run(llm.search, {"index": "kb", "query": "kafka partition offsets", "topK": 1})
    assert [(r["id"], r["metadata"]) for r in found["results"]] == [("kafka", {"src": "k"})]
    assert found["results"][0]["score"] > 0.5


def test_search_of_a_missing_index_and_a_missing_model_are_terminal(
    fake: FakeLLM, tmp_path: Path
) -> None:
    """No such index and no model configured fail the task for good, saying so."""
    fake.load(None)
    bare = LlmWorker(config=LlmConfig(base_url=fake.base_url), store=JsonVectorStore(tmp_path))
    error = failure(bare.search, {"index": "nothing", "query": "q", "model": "emb"})
    assert isinstance(error, TerminalError)
    assert "no index named 'nothing'" in str(error)
    error = failure(bare.chat_complete, {"messages": USER})
    assert isinstance(error, TerminalError)
    assert "'model' is missing and ORCH_LLM_MODEL is not set" in str(error)


def test_fake_server_lists_models_refuses_unknown_routes_and_records_requests(
    fake: FakeLLM,
) -> None:
    """GET /v1/models lists the script's models; an unknown route is a 404 in OpenAI's shape."""
    fake.load({"models": ["a", "b"]})
    models = httpx.get(f"{fake.base_url}/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == ["a", "b"]
    missing = httpx.post(f"{fake.base_url}/nothing", content=b"{}", timeout=5)
    assert missing.status_code == 404
    assert "no route POST /v1/nothing" in orjson.loads(missing.content)["error"]["message"]
    assert [r.path for r in fake.requests[-2:]] == ["/v1/models", "/v1/nothing"]


def test_the_module_worker_serves_every_llm_task() -> None:
    """`orchestrator worker workers.llm` finds a worker with the five LLM task types."""
    assert workers.llm.worker.task_types == (
        "LLM_CHAT_COMPLETE",
        "LLM_TEXT_COMPLETE",
        "LLM_EMBED",
        "LLM_INDEX",
        "LLM_SEARCH",
    )
