"""Example workers for the demo content pipeline: research, draft, review, publish.

Each task stands in for an AI step (retrieval, an LLM draft, a quality check) but is
deterministic and fast: the same input always gives the same output, with no network and no
model, so the demo and the benchmarks measure the orchestrator and nothing else.

Input/output contract of each task (the ``name`` a workflow definition uses is the task type):

- ``research_topic``
    in:  {"topic": str, "max_facts": int = 3}
    out: {"topic": str, "facts": [str, ...], "sources": [str, ...]}
    A blank topic fails the task for good (TerminalError).
- ``draft_article``  (async; shows a handler that takes the TaskContext)
    in:  {"topic": str, "facts": [str, ...], "tone": str = "neutral"}
    out: {"title": str, "body": str, "word_count": int, "draft_id": str}
- ``review_draft``
    in:  {"title": str, "body": str, "min_words": int = 30}
    out: {"approved": bool, "score": float (0..1), "notes": [str, ...]}
- ``publish_article``
    in:  {"title": str, "body": str, "approved": bool}
    out: {"url": str, "slug": str, "published": true}
    An unapproved draft fails the task for good (TerminalError).

Wired as a pipeline (``workers/content_pipeline.json``): research.topic <- workflow.input.topic;
draft.{topic, facts} <- research.output.{topic, facts}; review.{title, body} <-
draft.output.{title, body}; publish.{title, body} <- draft.output, publish.approved <-
review.output.approved; the workflow outputs the url, title, score and sources.

Run it with ``orchestrator worker workers.examples`` (SIGTERM or Ctrl-C stops it gracefully).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from orchestrator.worker import TaskContext, TerminalError, Worker

__all__ = ["worker"]

Json = Any

worker = Worker(name="examples")

_ANGLES = (
    "what {topic} is and why it matters now",
    "how {topic} works, step by step",
    "where {topic} is used in practice",
    "the main risks and limits of {topic}",
    "open questions about {topic}",
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "untitled"


@worker.task("research_topic")
def research_topic(input: Json) -> dict[str, Json]:
    """Gather background facts and sources about ``topic`` (a stand-in for retrieval)."""
    topic = str(input.get("topic") or "").strip()
    if not topic:
        raise TerminalError("research_topic needs a non-empty 'topic'")
    count = max(1, min(int(input.get("max_facts", 3)), len(_ANGLES)))
    facts = [angle.format(topic=topic) for angle in _ANGLES[:count]]
    sources = [f"https://example.org/{_slug(topic)}/{index}" for index in range(1, count + 1)]
    return {"topic": topic, "facts": facts, "sources": sources}


@worker.task("draft_article")
async def draft_article(input: Json, ctx: TaskContext) -> dict[str, Json]:
    """Write a draft from the facts (a stand-in for an LLM call, hence async)."""
    await asyncio.sleep(0)
    topic = str(input.get("topic") or "untitled")
    facts = [str(fact) for fact in input.get("facts") or []]
    tone = str(input.get("tone", "neutral"))
    title = f"{topic.title()}: A {tone.capitalize()} Overview"
    paragraphs = [f"This article covers {len(facts)} angles on {topic}."]
    paragraphs += [f"We look at {fact}, with examples and references." for fact in facts]
    body = "\n\n".join(paragraphs)
    draft_id = hashlib.sha256(f"{ctx.workflow_id}/{ctx.task_id}".encode()).hexdigest()[:12]
    return {"title": title, "body": body, "word_count": len(body.split()), "draft_id": draft_id}


@worker.task("review_draft")
def review_draft(input: Json) -> dict[str, Json]:
    """Check a draft's length and structure and score it (a stand-in for a quality check)."""
    title = str(input.get("title") or "")
    body = str(input.get("body") or "")
    min_words = int(input.get("min_words", 30))
    words = len(body.split())
    notes = []
    if words < min_words:
        notes.append(f"too short: {words} words, at least {min_words} wanted")
    if not title:
        notes.append("missing title")
    paragraphs = body.count("\n\n") + 1 if body else 0
    score = round(min(1.0, words / (min_words * 2)) * (1.0 if title else 0.5), 2)
    return {"approved": not notes, "score": score, "notes": notes or [f"{paragraphs} paragraphs"]}


@worker.task("publish_article")
def publish_article(input: Json) -> dict[str, Json]:
    """Publish an approved draft and return where it lives."""
    if input.get("approved") is not True:
        raise TerminalError("publish_article refuses a draft that review did not approve")
    slug = _slug(str(input.get("title") or ""))
    return {"url": f"https://example.com/articles/{slug}", "slug": slug, "published": True}
