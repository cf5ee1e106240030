"""A LlamaIndex query engine as the handler of a task type on a :class:`Worker`.

The task input's ``query_key`` item (a non-empty string) is the question; the output is
``{"response": str, "sources": [{"id", "documentId", "text", "score", "metadata"}, ...]}``, the
sources in the order the engine ranked them: ``id`` is the retrieved node's, ``documentId`` the
document it was cut from (``null`` if none), ``score`` ``null`` when the retriever gives none.

How a failure maps to the task's result (the TaskDef's retries apply to a failed attempt): a
missing or empty query, or a ``ValueError`` from the engine (pydantic's ``ValidationError``
among them), fails the task for good (:class:`QueryInputError`, a :class:`TerminalError`), as
the same question fails again; any other exception (the LLM or the vector store unreachable, a
timeout) fails the attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import (
    RESPONSE_TYPE,
    AsyncStreamingResponse,
    PydanticResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.schema import NodeWithScore

from orchestrator.errors import TerminalError
from orchestrator.worker import Worker

__all__ = ["QueryInputError", "QueryTask", "query_engine_task", "response_json"]

Json = Any
QueryTask = Callable[[dict[str, Json]], Awaitable[dict[str, Json]]]


class QueryInputError(TerminalError):
    """The task has no usable query, or the query engine refused it with a ValueError."""


def query_engine_task(
    worker: Worker, task_type: str, query_engine: BaseQueryEngine, *, query_key: str = "query"
) -> QueryTask:
    """Register ``query_engine`` on ``worker`` as the handler of ``task_type``; return it.

    The handler awaits ``query_engine.aquery`` on the task input's ``query_key``; a streaming
    response is read to its end. Output and failures are as the module docstring says.
    """

    async def handle(task_input: dict[str, Json]) -> dict[str, Json]:
        query = task_input.get(query_key)
        if not isinstance(query, str) or not query.strip():
            raise QueryInputError(f"the task input's {query_key!r} must be a non-empty string")
        try:
            response = await query_engine.aquery(query)
        except ValueError as exc:
            raise QueryInputError(f"{type(exc).__name__}: {exc}") from exc
        return await response_json(response)

    handle.__qualname__ = f"query_engine_task[{task_type}]"
    worker.task(task_type)(handle)
    return handle


async def response_json(response: RESPONSE_TYPE) -> dict[str, Json]:
    """A query engine's response as ``{"response", "sources"}`` (streams are read to the end)."""
    final: Response | PydanticResponse
    match response:
        case AsyncStreamingResponse():
            final = await response.get_response()
        case StreamingResponse():
            final = await asyncio.to_thread(response.get_response)
        case _:
            final = response
    text = "" if final.response is None else str(final)
    return {"response": text, "sources": [source_json(node) for node in final.source_nodes]}


def source_json(source: NodeWithScore) -> dict[str, Json]:
    """One retrieved node: ids, text, score and metadata (values with no JSON form as text)."""
    return {
        "id": source.node.node_id,
        "documentId": source.node.ref_doc_id,
        "text": source.node.get_content(),
        "score": source.score,
        "metadata": orjson.loads(orjson.dumps(source.node.metadata, default=str)),
    }
