"""The support example's worker: the LLM tasks plus the two tasks of the shop's own systems.

Run it with ``orchestrator worker examples.support.workers``. One process serves
LLM_CHAT_COMPLETE, LLM_INDEX and LLM_SEARCH (and the other LLM tasks) and:

- ``support_knowledge_base``
    in:  {}
    out: {"documents": [{"id": str, "text": str, "metadata": {"title": str}}, ...]}, the FAQ
         articles of ``knowledge_base.json``, ready for LLM_INDEX.
- ``support_order_lookup``
    in:  {"orderNumber": str or null}
    out: {"orderNumber", "found": bool, "status", "carrier", "eta"}; an order the shop does
         not know (or no number) is ``found: false``, not a failure: the reply says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from workers.llm import LlmWorker

__all__ = ["KNOWLEDGE_BASE", "ORDERS", "worker"]

Json = Any

KNOWLEDGE_BASE = Path(__file__).with_name("knowledge_base.json")

#: The shop's order system, as far as this example needs one.
ORDERS: dict[str, dict[str, str]] = {
    "48213": {"status": "shipped", "carrier": "DHL", "eta": "Thursday"},
    "51007": {"status": "packing", "carrier": "UPS", "eta": "next Monday"},
    "39920": {"status": "delivered", "carrier": "DHL", "eta": "delivered on Tuesday"},
}

worker = LlmWorker(name="support")


@worker.task("support_knowledge_base")
def knowledge_base(task_input: Json) -> dict[str, Json]:
    """The FAQ articles as LLM_INDEX documents (the title goes into the metadata)."""
    articles = orjson.loads(KNOWLEDGE_BASE.read_bytes())
    documents = [
        {"id": a["id"], "text": a["text"], "metadata": {"title": a["title"]}} for a in articles
    ]
    return {"documents": documents}


@worker.task("support_order_lookup")
def order_lookup(task_input: Json) -> dict[str, Json]:
    """The status of one order by its number; ``found`` is false for an unknown number."""
    number = (task_input or {}).get("orderNumber")
    order = ORDERS.get(str(number)) if number else None
    if order is None:
        return {"orderNumber": number, "found": False, "status": None, "carrier": None, "eta": None}
    return {"orderNumber": str(number), "found": True, **order}
