"""The content pipeline's own tasks, served by the same worker process as the LLM tasks.

``orchestrator worker examples.content.workers`` serves every LLM task (LLM_CHAT_COMPLETE,
LLM_INDEX, LLM_SEARCH, ...) and these two:

- ``content_intake``
    in:  {"requirement": {"topic": str, "audience"?: str, "length"?: words or "short" |
          "medium" | "long", "keywords"?: [str] or "a, b"}, "topK"?: 1..10,
          "threshold"?: 0..10, "maxDrafts"?: 1..5}
    out: {"topic", "audience", "words", "keywords", "topK", "threshold", "maxDrafts"}, with
          whitespace collapsed, keywords lower-cased without duplicates, and defaults filled in.
    A requirement without a topic, or a field of the wrong type or out of range, fails the task
    for good, naming the field.
- ``content_draft_prompt``
    in:  {"brief": content_intake's output, "passages": LLM_SEARCH's results,
          "previous": the last draft {"title", "body"} or null, "score": its score or null,
          "issues": the issues the quality check found in it, or null}
    out: {"messages": the chat messages that ask for the (next) draft, "sources": the passages
          as text, one "[id] text" a line, for the quality check's prompt}
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.errors import TerminalError
from workers.llm import LlmWorker

__all__ = ["LENGTHS", "RequirementError", "draft_prompt", "intake", "worker"]

Json = Any
LENGTHS = {"short": 200, "medium": 500, "long": 900}
DEFAULT_AUDIENCE = "general readers"
DEFAULT_TOP_K = 3
DEFAULT_THRESHOLD = 7.0
DEFAULT_MAX_DRAFTS = 3
MAX_KEYWORDS = 10
_SPACES = re.compile(r"\s+")

SYSTEM_PROMPT = (
    "You are a technical writer. Write accurate articles grounded only in the sources you are "
    "given and cite them as [id]. Answer in JSON with the keys title and body."
)

worker = LlmWorker(name="content")


class RequirementError(TerminalError):
    """The requirement cannot be written up: no topic, or a field of the wrong type or range."""


@worker.task("content_intake")
def intake(task_input: Json) -> dict[str, Json]:
    """Validate the requirement and the run's settings; return them normalised."""
    data = task_input if isinstance(task_input, dict) else {}
    requirement = data.get("requirement") or {}
    if not isinstance(requirement, dict):
        raise RequirementError(f"requirement must be an object, not {requirement!r}")
    return {
        "topic": _topic(requirement.get("topic")),
        "audience": _text(requirement.get("audience"), "audience") or DEFAULT_AUDIENCE,
        "words": _words(requirement.get("length")),
        "keywords": _keywords(requirement.get("keywords")),
        "topK": int(_number(data.get("topK"), "topK", DEFAULT_TOP_K, 1, 10, integer=True)),
        "threshold": _number(data.get("threshold"), "threshold", DEFAULT_THRESHOLD, 0, 10),
        "maxDrafts": int(
            _number(data.get("maxDrafts"), "maxDrafts", DEFAULT_MAX_DRAFTS, 1, 5, integer=True)
        ),
    }


@worker.task("content_draft_prompt")
def draft_prompt(task_input: Json) -> dict[str, Json]:
    """The messages that ask for a draft, with the previous draft's issues as feedback."""
    data = task_input if isinstance(task_input, dict) else {}
    brief = data.get("brief") or {}
    sources = "\n".join(
        f"[{passage.get('id')}] {passage.get('text')}" for passage in data.get("passages") or []
    )
    lines = [
        f'Write an article about "{brief.get("topic")}" for {brief.get("audience")}, '
        f"about {brief.get('words')} words.",
    ]
    if brief.get("keywords"):
        lines.append(f"Work in these keywords: {', '.join(brief['keywords'])}.")
    lines += ["", "Sources:", sources or "(none found: say so instead of inventing facts)"]
    previous = data.get("previous")
    if isinstance(previous, dict):
        lines += ["", *_feedback(previous, data.get("score"), data.get("issues"))]
    return {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(lines)},
        ],
        "sources": sources,
    }


def _feedback(previous: dict[str, Json], score: Json, issues: Json) -> list[str]:
    """The lines that hand the quality check's verdict on ``previous`` back to the writer."""
    points = [f"- {issue}" for issue in issues or []] or ["- raise the overall quality"]
    return [
        f"Reviewer feedback on your previous draft (score {score} of 10):",
        *points,
        "Revise the previous draft so that it addresses every point.",
        "",
        f"Previous draft: {previous.get('title')}",
        str(previous.get("body") or ""),
    ]


def _topic(value: Json) -> str:
    topic = _text(value, "topic")
    if not topic:
        raise RequirementError(
            "the requirement has no topic: give requirement.topic, a non-empty string"
        )
    return topic


def _text(value: Json, field: str) -> str:
    """``value`` with its whitespace collapsed; '' for None; an error for a non-string."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RequirementError(f"requirement.{field} must be a string, not {value!r}")
    return _SPACES.sub(" ", value).strip()


def _words(value: Json) -> int:
    """The target length in words: a number of words, or short, medium (default) or long."""
    if value is None or value == "":
        return LENGTHS["medium"]
    if isinstance(value, str) and value.strip().lower() in LENGTHS:
        return LENGTHS[value.strip().lower()]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 50 <= value <= 3000:
        return value
    choices = ", ".join(LENGTHS)
    raise RequirementError(
        f"requirement.length must be {choices} or a number of words from 50 to 3000, not {value!r}"
    )


def _keywords(value: Json) -> list[str]:
    """Keywords lower-cased and stripped, duplicates and blanks dropped, at most ten."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise RequirementError(
            f"requirement.keywords must be a list of strings or a comma-separated string, "
            f"not {value!r}"
        )
    words = [_SPACES.sub(" ", item).strip().lower() for item in items]
    return list(dict.fromkeys(word for word in words if word))[:MAX_KEYWORDS]


def _number(
    value: Json, field: str, default: float, low: float, high: float, *, integer: bool = False
) -> float:
    """``value`` as a number within [low, high]; ``default`` when absent."""
    if value is None:
        return default
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise RequirementError(f"{field} must be {what} from {low:g} to {high:g}, not {value!r}")
    return value
