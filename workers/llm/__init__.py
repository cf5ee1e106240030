"""Built-in LLM tasks on any OpenAI-compatible API, and retrieval over a local vector index.

Run them with ``orchestrator worker workers.llm``. The engine schedules them like SIMPLE tasks:
the command arrives on ``tasks.<TYPE>`` with the task's resolved ``inputParameters`` as input.
Configuration (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``ORCH_LLM_MODEL``...) is in
:mod:`workers.llm.config`; the API key is never logged and never part of an output or a reason.

Every task also takes ``llmProvider`` (a provider of ``ORCH_LLM_PROVIDERS``), ``baseUrl``,
``model`` and ``timeoutSeconds`` (default 60). ``usage`` is ``{"promptTokens",
"completionTokens", "totalTokens"}``; tokens also count in the ``orch.llm.tokens`` metric.

- ``LLM_CHAT_COMPLETE``
    in:  {"messages": [{"role": str, "content": str or parts (or Conductor's "message"),
          "name"?, "tool_call_id"?, "tool_calls"?}, ...], "temperature": 0..2, "topP": 0..1,
          "maxTokens": int, "stopWords": [str], "jsonOutput": bool, "jsonSchema": {...},
          "jsonSchemaName": str = "output", "tools": [OpenAI tools], "toolChoice": any}
    out: {"result": text, or the parsed JSON with jsonOutput/jsonSchema (null when the reply
          only calls tools), "toolCalls": [{"id", "name", "arguments": parsed JSON}],
          "message": the assistant message as the provider sent it (role, content, tool_calls),
          ready to append to ``messages`` in an agent loop, "finishReason": str,
          "usage": {...}, "model": str}
    ``jsonOutput`` asks for ``response_format: json_object``, ``jsonSchema`` for
    ``json_schema``; a reply that is not JSON or breaks the schema fails the attempt (retryable),
    naming the violation and where it is.
- ``LLM_TEXT_COMPLETE``
    in:  {"prompt": str, and the generation fields above (no tools)}
    out: {"result", "finishReason", "usage", "model"}
- ``LLM_EMBED``
    in:  {"texts": [str] or "text": str, "dimensions": int}
    out: {"embeddings": [[float, ...], ...] in input order, "usage", "model"}
- ``LLM_INDEX``
    in:  {"index": name, "documents": [{"id": str, "text": str, "metadata": {...}}],
          "dimensions": int}
    out: {"index", "indexed": int, "ids": [str], "usage"}; a document with an id already in
          the index replaces it, so a redelivered task indexes nothing twice.
- ``LLM_SEARCH``
    in:  {"index": name, "query": str, "topK": int = 3, "minScore": -1..1, "dimensions": int}
    out: {"index", "results": [{"id", "text", "score" (cosine), "metadata"}] best first, "usage"}
    An index nothing was added to fails the task for good.

Failures: 408, 429 and 5xx, no connection, a timeout and a reply of the wrong shape fail the
attempt (the TaskDef's retries and backoff apply); another 4xx, input that cannot make a
request, an unknown provider or index, and no model configured fail the task for good.
"""

from __future__ import annotations

from workers.llm.config import LlmConfig
from workers.llm.tasks import LlmWorker
from workers.llm.vectors import Document, Hit, JsonVectorStore, MemoryVectorStore, VectorStore

__all__ = [
    "Document",
    "Hit",
    "JsonVectorStore",
    "LlmConfig",
    "LlmWorker",
    "MemoryVectorStore",
    "VectorStore",
    "worker",
]

worker = LlmWorker()
