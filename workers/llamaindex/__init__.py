"""LlamaIndex on the engine: a query engine as a task handler.

Install with ``pip install 'orchestrator[llamaindex]'`` (llama-index-core).

```python
from llama_index.core import VectorStoreIndex
from orchestrator.worker import Worker
from workers.llamaindex import query_engine_task

worker = Worker(name="rag")
index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
query_engine_task(worker, "answer", index.as_query_engine(llm=llm, similarity_top_k=3))
# in: {"query": "..."}  out: {"response": "...", "sources": [{"text", "score", "metadata"...}]}
```

Output and failures are described in :mod:`workers.llamaindex.tasks`.
"""

from __future__ import annotations

try:
    from workers.llamaindex.tasks import QueryInputError, QueryTask, query_engine_task
except ModuleNotFoundError as exc:  # pragma: no cover - only without the extra
    if not (exc.name or "").startswith("llama_index"):
        raise
    raise ModuleNotFoundError(
        "workers.llamaindex needs llama-index-core: pip install 'orchestrator[llamaindex]'",
        name=exc.name,
    ) from exc

__all__ = ["QueryInputError", "QueryTask", "query_engine_task"]
