"""The content pipeline: research a topic, draft and self-review an article, publish it.

The workflow ``content_agent`` (``definitions/content_pipeline_agent.json``) validates the
requirement, indexes the knowledge base (``corpus.json``) and retrieves passages about the topic,
then loops: draft with the passages (and the last quality check's issues), score the draft with
a structured LLM reply, until the score reaches the threshold or the drafts run out. An editor
reviews the last draft (a HUMAN task); approved, it is POSTed to the publication endpoint;
rejected, the run fails with the editor's comments.

:func:`content_example` describes it for :mod:`examples.common`; ``python -m examples.content``
runs it once with a local publication endpoint (:mod:`examples.content.receiver`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from examples.common import Example, Run

__all__ = [
    "CORPUS",
    "DEFINITION",
    "FAKE_SCRIPT",
    "REQUIREMENT",
    "WORKER_MODULES",
    "WORKFLOW",
    "content_example",
    "editor",
    "workflow_input",
]

Json = Any
HERE = Path(__file__).parent
DEFINITION = HERE / "definitions" / "content_pipeline_agent.json"
CORPUS = HERE / "corpus.json"
FAKE_SCRIPT = HERE / "fake_llm.json"
WORKFLOW = "content_agent"
WORKER_MODULES = ["examples.content.workers", "workers.system"]
REQUIREMENT: dict[str, Json] = {
    "topic": "Event sourcing with Kafka",
    "audience": "backend engineers",
    "length": "short",
    "keywords": ["Partitions", "offsets", "snapshots", "partitions"],
}


def workflow_input(
    publish_url: str,
    requirement: Json = REQUIREMENT,
    *,
    top_k: int = 4,
    threshold: float = 7,
    max_drafts: int = 3,
) -> Json:
    """The run's input: the requirement, the knowledge base, the settings, where to publish."""
    return {
        "requirement": requirement,
        "documents": orjson.loads(CORPUS.read_bytes()),
        "topK": top_k,
        "threshold": threshold,
        "maxDrafts": max_drafts,
        "publishUrl": publish_url,
    }


def editor(*, approved: bool, comments: str) -> Callable[[Run], None]:
    """A ``drive`` function that plays the editor: it answers the review as told."""

    def review(run: Run) -> None:
        task = run.waiting_task("review", timeout=120.0)
        shown = task.input or {}
        verdict = "approves" if approved else "rejects"
        click.echo(
            f"editor {verdict} {shown.get('title')!r} (score {shown.get('score')}, "
            f"assigned to {shown.get('assignee')}): {comments}"
        )
        run.answer("review", {"approved": approved, "comments": comments})

    return review


def content_example(
    publish_url: str,
    *,
    drive: Callable[[Run], None] | None = None,
    input: Json = None,
) -> Example:
    """The content pipeline as an :class:`Example`; by default the editor approves."""
    return Example(
        name="content",
        workflow=WORKFLOW,
        definitions=[DEFINITION],
        worker_modules=WORKER_MODULES,
        input=workflow_input(publish_url) if input is None else input,
        fake_script=FAKE_SCRIPT,
        drive=drive or editor(approved=True, comments="Clear and well sourced. Ship it."),
        timeout_s=180.0,
    )
