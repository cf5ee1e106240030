"""The LlamaIndex integration without a broker: a real in-memory index, answers, sources, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.errors import TerminalError
from orchestrator.worker import Worker
from workers.llm.fake_script import embed_text

try:
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import CustomQueryEngine

    from workers.llamaindex import QueryInputError, query_engine_task
except ModuleNotFoundError as missing:
    pytest.skip(
        f"llama-index-core is not installed ({missing.name}): pip install '.[llamaindex]'",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(60)

DOCUMENTS = [
    ("kafka", "Kafka keeps every workflow event in partitions of the events topic.", "log"),
    ("bread", "Sourdough bread needs a starter, flour, water and patience.", "kitchen"),
    ("rocks", "RocksDB stores the processor state next to its checkpoint offsets.", "state"),
]


class HashedEmbedding(BaseEmbedding):
    """Hashed bag-of-words vectors (the fake OpenAI server's): local, deterministic, no model."""

    def _get_query_embedding(self, query: str) -> list[float]:
        return embed_text(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return embed_text(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return embed_text(query)


def build_index() -> VectorStoreIndex:
    """A VectorStoreIndex in memory over :data:`DOCUMENTS`, embedded with HashedEmbedding."""
    documents = [
        Document(text=text, id_=doc_id, metadata={"shelf": shelf})
        for doc_id, text, shelf in DOCUMENTS
    ]
    return VectorStoreIndex.from_documents(documents, embed_model=HashedEmbedding())


class Refusing(CustomQueryEngine):
    """A query engine that raises the exception it is given."""

    error: Any

    def custom_query(self, query_str: str) -> str:
        """Raise ``error``."""
        raise self.error


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    """One index for the module (building it embeds every document)."""
    return build_index()


def test_the_answer_comes_with_ranked_sources(index: VectorStoreIndex) -> None:
    """The output holds the LLM's answer and the retrieved nodes, best first, with metadata."""
    engine = index.as_query_engine(llm=MockLLM(max_tokens=4), similarity_top_k=2)
    worker = Worker("rag")
    handler = query_engine_task(worker, "answer", engine, query_key="question")
    output = asyncio.run(handler({"question": "where is every workflow event kept in kafka"}))
    assert worker.task_types == ("answer",)
    assert output["response"] == "text text text text"
    sources = output["sources"]
    assert len(sources) == 2
    assert sources[0] | {"id": None, "score": None} == {
        "id": None,
        "documentId": "kafka",
        "text": DOCUMENTS[0][1],
        "score": None,
        "metadata": {"shelf": "log"},
    }
    assert sources[0]["score"] > sources[1]["score"]


def test_a_streaming_engine_is_read_to_the_end(index: VectorStoreIndex) -> None:
    """A streaming query engine's answer is collected whole before the task completes."""
    engine = index.as_query_engine(llm=MockLLM(max_tokens=3), streaming=True, similarity_top_k=1)
    handler = query_engine_task(Worker("rag"), "answer", engine)
    output = asyncio.run(handler({"query": "sourdough starter"}))
    assert output["response"] == "text text text"
    assert [s["documentId"] for s in output["sources"]] == ["bread"]


def test_a_missing_query_or_a_value_error_fails_for_good() -> None:
    """No query, an empty one, or a ValueError from the engine is a terminal QueryInputError."""
    handler = query_engine_task(Worker("rag"), "answer", Refusing(error=ValueError("too long")))
    for task_input in ({}, {"query": "  "}, {"query": 3}):
        with pytest.raises(QueryInputError, match="non-empty string"):
            asyncio.run(handler(task_input))
    with pytest.raises(QueryInputError, match="ValueError: too long"):
        asyncio.run(handler({"query": "why"}))
    assert issubclass(QueryInputError, TerminalError)


def test_other_engine_errors_fail_the_attempt() -> None:
    """An engine error that is not a ValueError passes through: the attempt fails, retryable."""
    engine = Refusing(error=ConnectionError("vector store unreachable"))
    handler = query_engine_task(Worker("rag"), "answer", engine)
    with pytest.raises(ConnectionError, match="unreachable"):
        asyncio.run(handler({"query": "why"}))
