"""The LLM tasks' handlers and the :class:`LlmWorker` that serves them.

Every handler is async and makes one call to an OpenAI-compatible API per attempt (LLM_INDEX
makes one embeddings call for all its documents). The vector store is used from a thread so a
slow disk never stalls the event loop the other handlers share.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from orchestrator.config import Settings
from orchestrator.errors import TerminalError
from orchestrator.worker import DEFAULT_CONCURRENCY, DEFAULT_GRACE_PERIOD_S, Worker, WorkerLimits
from workers.llm.client import LlmClient
from workers.llm.config import Endpoint, LlmConfig
from workers.llm.errors import VectorStoreError
from workers.llm.inputs import (
    ChatRequest,
    EmbedRequest,
    IndexRequest,
    SearchRequest,
    Target,
    TextRequest,
    embeddings_body,
)
from workers.llm.outputs import chat_output, embedding_vectors, text_output, usage
from workers.llm.tokens import record_tokens
from workers.llm.vectors import Document, JsonVectorStore, VectorStore

__all__ = ["INDEX_SUBDIR", "LlmWorker"]

Json = Any
T = TypeVar("T")
INDEX_SUBDIR = "llm-index"


class LlmWorker(Worker):
    """A :class:`Worker` of LLM_CHAT_COMPLETE, LLM_TEXT_COMPLETE, LLM_EMBED, LLM_INDEX, LLM_SEARCH.

    ``config`` defaults to :meth:`LlmConfig.from_env` on first use; ``store``
    to a :class:`JsonVectorStore` in ``ORCH_LLM_INDEX_DIR`` or ``<state dir>/llm-index``.
    """

    def __init__(
        self,
        name: str = "llm",
        *,
        config: LlmConfig | None = None,
        store: VectorStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name)
        self._config = config
        self._store = store
        self._store_lock = threading.Lock()
        self.client = LlmClient(transport)
        self.task("LLM_CHAT_COMPLETE")(self.chat_complete)
        self.task("LLM_TEXT_COMPLETE")(self.text_complete)
        self.task("LLM_EMBED")(self.embed)
        self.task("LLM_INDEX")(self.index)
        self.task("LLM_SEARCH")(self.search)

    @property
    def config(self) -> LlmConfig:
        """The configuration given, or the one the environment describes."""
        if self._config is None:
            self._config = LlmConfig.from_env()
        return self._config

    def store(self, state_dir: Path | None = None) -> VectorStore:
        """The vector store; the first call without one given opens the JSON store."""
        with self._store_lock:
            if self._store is None:
                directory = self.config.index_dir or (state_dir or Path("state")) / INDEX_SUBDIR
                self._store = JsonVectorStore(directory)
            return self._store

    def run(
        self,
        settings: Settings,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        limits: WorkerLimits | None = None,
        stop: threading.Event | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD_S,
    ) -> None:
        """Serve the tasks as :meth:`Worker.run` does; the index defaults to the state dir."""
        self.store(settings.state_dir)  # also reads the configuration: a bad one fails here
        try:
            super().run(
                settings,
                concurrency=concurrency,
                limits=limits,
                stop=stop,
                grace_period=grace_period,
            )
        finally:
            self.client.close()

    async def chat_complete(self, task_input: Json) -> dict[str, Json]:
        """LLM_CHAT_COMPLETE: one chat completion; see the package docstring for the contract."""
        request = ChatRequest.from_input(task_input)
        endpoint, model = self._endpoint(request.target, request.TASK, embedding=False)
        response = await self.client.post(
            endpoint,
            "chat/completions",
            request.body(model),
            request.target.timeout_s,
            request.TASK,
        )
        output = chat_output(response, request.generation, request.TASK)
        record_tokens(output["model"] or model, output["usage"])
        return output

    async def text_complete(self, task_input: Json) -> dict[str, Json]:
        """LLM_TEXT_COMPLETE: one text completion of ``prompt``."""
        request = TextRequest.from_input(task_input)
        endpoint, model = self._endpoint(request.target, request.TASK, embedding=False)
        response = await self.client.post(
            endpoint, "completions", request.body(model), request.target.timeout_s, request.TASK
        )
        output = text_output(response, request.generation, request.TASK)
        record_tokens(output["model"] or model, output["usage"])
        return output

    async def embed(self, task_input: Json) -> dict[str, Json]:
        """LLM_EMBED: the embeddings of ``texts`` (or ``text``), in order."""
        request = EmbedRequest.from_input(task_input)
        vectors, spent, model = await self._embeddings(
            request.target, request.texts, request.dimensions, request.TASK
        )
        return {"embeddings": vectors, "usage": spent, "model": model}

    async def index(self, task_input: Json) -> dict[str, Json]:
        """LLM_INDEX: embed ``documents`` and store them in ``index`` (replacing equal ids)."""
        request = IndexRequest.from_input(task_input)
        texts = tuple(text for _, text, _ in request.documents)
        vectors, spent, _ = await self._embeddings(
            request.target, texts, request.dimensions, request.TASK
        )
        documents = [
            Document(doc_id, text, vector, metadata)
            for (doc_id, text, metadata), vector in zip(request.documents, vectors, strict=True)
        ]
        await self._in_store(request.TASK, lambda store: store.add(request.index, documents))
        ids = [doc.id for doc in documents]
        return {"index": request.index, "indexed": len(ids), "ids": ids, "usage": spent}

    async def search(self, task_input: Json) -> dict[str, Json]:
        """LLM_SEARCH: the ``topK`` documents of ``index`` nearest to ``query``."""
        request = SearchRequest.from_input(task_input)
        vectors, spent, _ = await self._embeddings(
            request.target, (request.query,), request.dimensions, request.TASK
        )
        hits = await self._in_store(
            request.TASK, lambda store: store.search(request.index, vectors[0], request.top_k)
        )
        floor = request.min_score
        results = [
            {"id": h.id, "text": h.text, "score": round(h.score, 6), "metadata": h.metadata}
            for h in hits
            if floor is None or h.score >= floor
        ]
        return {"index": request.index, "results": results, "usage": spent}

    async def _embeddings(
        self, target: Target, texts: tuple[str, ...], dimensions: int | None, task: str
    ) -> tuple[list[list[float]], dict[str, int], str]:
        endpoint, model = self._endpoint(target, task, embedding=True)
        body = embeddings_body(model, texts, dimensions)
        response = await self.client.post(endpoint, "embeddings", body, target.timeout_s, task)
        vectors = embedding_vectors(response, len(texts), task)
        spent = usage(response)
        record_tokens(model, spent)
        return vectors, spent, model

    async def _in_store(self, task: str, action: Callable[[VectorStore], T]) -> T:
        try:
            return await asyncio.to_thread(functools.partial(action, self.store()))
        except VectorStoreError as exc:
            raise TerminalError(f"{task}: {exc}") from exc

    def _endpoint(self, target: Target, task: str, *, embedding: bool) -> tuple[Endpoint, str]:
        endpoint = self.config.endpoint(target.provider, target.base_url, task)
        default = endpoint.embedding_model if embedding else endpoint.model
        model = target.model or default
        if model is None:
            variable = "ORCH_LLM_EMBEDDING_MODEL" if embedding else "ORCH_LLM_MODEL"
            raise TerminalError(f"{task} task input 'model' is missing and {variable} is not set")
        return endpoint, model
