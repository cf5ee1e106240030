"""LLM tasks in a workflow on the real broker: structured output, indexing, search and a retry.

A processor thread runs the workflow; an LlmWorker thread serves the LLM tasks against the fake
OpenAI server on loopback. The fake's first chat reply is a 429, so the TaskDef's retry shows
up in the history as a failed attempt followed by a successful one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import TaskFailed, TaskScheduled
from orchestrator.processor.loop import Processor
from workers.llm import JsonVectorStore, LlmConfig, LlmWorker
from workers.llm.fake_server import FakeLLM

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KEY = "sk-integration-secret"
SUMMARY = {
    "title": "Kafka as a database",
    "summary": "Kafka keeps every workflow event in partitions; offsets mark progress.",
    "keywords": ["kafka", "events", "offsets"],
}
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "keywords": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["title", "summary", "keywords"],
}
SCRIPT = [
    {"match": "Summarize", "status": 429, "error": "rate limited, slow down", "times": 1},
    {"match": "Summarize", "json": SUMMARY},
]


def rag_definition(index: str) -> Any:
    """Summarize the input with structured output, index the summary, then search for it."""
    return parse_definition(
        {
            "name": "llm_rag",
            "tasks": [
                {
                    "name": "LLM_CHAT_COMPLETE",
                    "taskReferenceName": "summarize",
                    "type": "LLM_CHAT_COMPLETE",
                    "inputParameters": {
                        "messages": [
                            {"role": "system", "content": "Answer in JSON."},
                            {"role": "user", "content": "Summarize: ${workflow.input.text}"},
                        ],
                        "jsonSchema": SCHEMA,
                        "temperature": 0,
                    },
                    "taskDefinition": {
                        "name": "LLM_CHAT_COMPLETE",
                        "retryCount": 2,
                        "retryDelaySeconds": 0,
                    },
                },
                {
                    "name": "LLM_INDEX",
                    "taskReferenceName": "index",
                    "type": "LLM_INDEX",
                    "inputParameters": {
                        "index": index,
                        "documents": [
                            {
                                "id": "summary",
                                "text": "${summarize.output.result.summary}",
                                "metadata": {"title": "${summarize.output.result.title}"},
                            },
                            {"id": "other", "text": "${workflow.input.other}"},
                        ],
                    },
                },
                {
                    "name": "LLM_SEARCH",
                    "taskReferenceName": "search",
                    "type": "LLM_SEARCH",
                    "inputParameters": {
                        "index": index,
                        "query": "${workflow.input.question}",
                        "topK": 1,
                    },
                },
            ],
            "outputParameters": {
                "title": "${summarize.output.result.title}",
                "usage": "${summarize.output.usage}",
                "hits": "${search.output.results}",
            },
        }
    )


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    """The fake OpenAI server with the test's script."""
    with FakeLLM(SCRIPT) as server:
        yield server


@pytest.fixture
def llm_worker(topics: Settings, fake: FakeLLM, tmp_path: Path) -> Iterator[LlmWorker]:
    """An LlmWorker in a thread, configured for the fake and indexing under tmp_path."""
    config = LlmConfig(base_url=fake.base_url, api_key=KEY, model="fake-chat", embedding_model="e")
    worker = LlmWorker(config=config, store=JsonVectorStore(tmp_path / "index"))
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(topics,), kwargs={"concurrency": 4, "stop": stop}, daemon=True
    )
    thread.start()
    yield worker
    stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the LLM worker did not stop"


def test_structured_output_then_index_and_search_with_a_retried_429(
    client: Client, processor_thread: Processor, llm_worker: LlmWorker, fake: FakeLLM
) -> None:
    """A 429 is retried per the TaskDef; the summary is indexed and found by search."""
    index = f"kb-{uuid4().hex[:8]}"
    client.register([rag_definition(index)])
    workflow_id = client.start(
        "llm_rag",
        input={
            "text": "a long report about event sourcing on Kafka",
            "other": "Sourdough bread needs a starter and patience",
            "question": "where does kafka keep workflow events and offsets",
        },
    )
    state = client.wait(workflow_id, timeout=90)
    assert state.status == "COMPLETED", state.reason
    assert state.output["title"] == SUMMARY["title"]
    assert [(h["id"], h["metadata"]) for h in state.output["hits"]] == [
        ("summary", {"title": SUMMARY["title"]})
    ]
    assert state.output["usage"]["totalTokens"] > 0

    history = client.history(workflow_id)
    scheduled = [e for e in history if isinstance(e, TaskScheduled) and e.ref_name == "summarize"]
    failed = [e for e in history if isinstance(e, TaskFailed)]
    assert [e.attempt for e in scheduled] == [1, 2]
    assert len(failed) == 1
    assert (failed[0].attempt, failed[0].retrying, failed[0].terminal) == (1, True, False)
    assert failed[0].error_type == "LlmUnavailableError"
    assert "HTTP 429 Too Many Requests" in failed[0].reason
    assert "rate limited, slow down" in failed[0].reason

    chats = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in chats)
    assert chats[1].body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert chats[1].body["messages"][1]["content"].startswith("Summarize: a long report")
    assert KEY not in repr(history)


def test_fake_server_command_line_serves_a_script(tmp_path: Path) -> None:
    """`python -m workers.llm.fake_server --script F` prints its URL and answers from F."""
    script = tmp_path / "script.json"
    script.write_bytes(orjson.dumps([{"match": "ping", "reply": "pong"}]))
    child = subprocess.Popen(
        [sys.executable, "-m", "workers.llm.fake_server", "--port", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line.startswith("OPENAI_BASE_URL=http://127.0.0.1:"), line
        base_url = line.partition("=")[2]
        body = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}
        reply = httpx.post(f"{base_url}/chat/completions", json=body, timeout=10).json()
        assert reply["choices"][0]["message"]["content"] == "pong"
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        assert child.wait(10) == 0
