"""LlamaIndex on the real broker: a query engine answers a workflow's SIMPLE task, with sources.

The index is a real in-memory ``VectorStoreIndex`` with hashed bag-of-words embeddings; the LLM
is a small ``CustomLLM`` calling the fake OpenAI server's ``/v1/completions`` on loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import TaskCompleted
from orchestrator.processor.loop import Processor
from orchestrator.worker import Worker
from workers.llm.fake_server import FakeLLM

try:
    from llama_index.core.llms import (
        CompletionResponse,
        CompletionResponseGen,
        CustomLLM,
        LLMMetadata,
    )
    from llama_index.core.llms.callbacks import llm_completion_callback

    from tests.unit.test_llamaindex import DOCUMENTS, build_index
    from workers.llamaindex import query_engine_task
except ModuleNotFoundError as missing:
    pytest.skip(
        f"llama-index-core is not installed ({missing.name}): pip install '.[llamaindex]'",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 60.0
QUESTION = "Where does the engine keep every workflow event?"
ANSWER = "In partitions of the Kafka events topic."
RAG = parse_definition(
    {
        "name": "li_rag",
        "tasks": [
            {
                "name": "li_answer",
                "taskReferenceName": "answer",
                "type": "SIMPLE",
                "inputParameters": {"question": "${workflow.input.question}"},
            }
        ],
        "outputParameters": {
            "answer": "${answer.output.response}",
            "sources": "${answer.output.sources}",
        },
    }
)


class FakeServerLLM(CustomLLM):
    """A completion LLM on any OpenAI-compatible ``/completions`` (here the fake server)."""

    base_url: str

    @property
    def metadata(self) -> LLMMetadata:
        """A completion model (prompts, not chat messages)."""
        return LLMMetadata(model_name="fake-chat", is_chat_model=False)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """One blocking completion."""
        reply = httpx.post(f"{self.base_url}/completions", json=self._body(prompt), timeout=10)
        return self._response(reply)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        """One completion on the caller's event loop."""
        async with httpx.AsyncClient(timeout=10) as http:
            reply = await http.post(f"{self.base_url}/completions", json=self._body(prompt))
        return self._response(reply)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        """The whole completion as one chunk."""
        text = self.complete(prompt).text
        yield CompletionResponse(text=text, delta=text)

    def _body(self, prompt: str) -> dict[str, Any]:
        return {"model": "fake-chat", "prompt": prompt, "temperature": 0}

    @staticmethod
    def _response(reply: httpx.Response) -> CompletionResponse:
        reply.raise_for_status()
        return CompletionResponse(text=reply.json()["choices"][0]["text"])


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    """The fake OpenAI server, answering the test's question."""
    with FakeLLM([{"match": QUESTION, "reply": ANSWER}]) as server:
        yield server


def test_a_query_engine_answers_a_workflow_task_with_sources(
    client: Client, processor_thread: Processor, topics: Settings, fake: FakeLLM
) -> None:
    """A VectorStoreIndex query engine serves a SIMPLE task: the answer and ranked sources."""
    engine = build_index().as_query_engine(
        llm=FakeServerLLM(base_url=fake.base_url), similarity_top_k=2
    )
    worker = Worker("llamaindex")
    query_engine_task(worker, "li_answer", engine, query_key="question")
    client.register([RAG])
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(topics,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        workflow_id = client.start("li_rag", input={"question": QUESTION})
        state = client.wait(workflow_id, timeout=WAIT_S)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"

    assert state.status == "COMPLETED", state.reason
    assert state.output["answer"] == ANSWER
    sources = state.output["sources"]
    assert [s["documentId"] for s in sources][:1] == ["kafka"]
    [completed] = [e for e in client.history(workflow_id) if isinstance(e, TaskCompleted)]
    assert completed.output == {"response": ANSWER, "sources": sources}
    assert len(sources) == 2
    assert (sources[0]["text"], sources[0]["metadata"]) == (DOCUMENTS[0][1], {"shelf": "log"})
    assert sources[0]["score"] > sources[1]["score"]
    [request] = [r.body for r in fake.requests if r.path == "/v1/completions"]
    assert DOCUMENTS[0][1] in request["prompt"], "the retrieved text is the LLM's context"
