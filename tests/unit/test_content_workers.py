"""The content pipeline's own tasks and its publication endpoint's bookkeeping, without I/O."""

from __future__ import annotations

from typing import Any

import pytest

from examples.content.receiver import Publication, publication, slug
from examples.content.workers import (
    LENGTHS,
    RequirementError,
    draft_prompt,
    intake,
)
from orchestrator.errors import TerminalError

Json = Any
PASSAGES = [
    {"id": "kafka-log", "text": "Kafka keeps an append-only log.", "score": 0.9},
    {"id": "es-basics", "text": "State is a fold of events.", "score": 0.8},
]


def test_intake_normalises_the_requirement_and_fills_defaults() -> None:
    """Whitespace collapses, keywords are lower-cased without duplicates, defaults fill gaps."""
    output = intake(
        {
            "requirement": {
                "topic": "  Event   sourcing\nwith Kafka ",
                "keywords": "Offsets, partitions,, offsets ",
            },
            "topK": None,
        }
    )
    assert output == {
        "topic": "Event sourcing with Kafka",
        "audience": "general readers",
        "words": LENGTHS["medium"],
        "keywords": ["offsets", "partitions"],
        "topK": 3,
        "threshold": 7.0,
        "maxDrafts": 3,
    }


@pytest.mark.parametrize(
    ("length", "words"), [("short", 200), ("LONG", 900), (120, 120), ("350", 350)]
)
def test_intake_reads_a_named_length_or_a_number_of_words(length: Json, words: int) -> None:
    """A length is short, medium, long or a number of words (also as digits in a string)."""
    assert intake({"requirement": {"topic": "t", "length": length}})["words"] == words


@pytest.mark.parametrize(
    "requirement", [None, {}, {"topic": ""}, {"topic": "   "}, {"audience": "engineers"}]
)
def test_intake_without_a_topic_fails_for_good(requirement: Json) -> None:
    """No topic (or a blank one) is a terminal error that says what to give."""
    with pytest.raises(TerminalError, match=r"the requirement has no topic: give requirement\."):
        intake({"requirement": requirement})


@pytest.mark.parametrize(
    ("task_input", "field"),
    [
        ({"requirement": {"topic": 42}}, "requirement.topic"),
        ({"requirement": {"topic": "t", "length": "epic"}}, "requirement.length"),
        ({"requirement": {"topic": "t", "length": 10}}, "requirement.length"),
        ({"requirement": {"topic": "t", "keywords": [1]}}, "requirement.keywords"),
        ({"requirement": {"topic": "t"}, "topK": 0}, "topK"),
        ({"requirement": {"topic": "t"}, "topK": 2.5}, "topK"),
        ({"requirement": {"topic": "t"}, "threshold": 11}, "threshold"),
        ({"requirement": {"topic": "t"}, "maxDrafts": True}, "maxDrafts"),
        ({"requirement": "write about kafka"}, "requirement must be an object"),
    ],
)
def test_intake_names_the_field_that_is_wrong(task_input: Json, field: str) -> None:
    """A field of the wrong type or out of range fails for good, naming the field."""
    with pytest.raises(RequirementError, match=field):
        intake(task_input)


def test_first_prompt_carries_the_brief_and_the_passages_but_no_feedback() -> None:
    """The first draft's prompt: topic, audience, length, keywords and one line per passage."""
    brief = intake({"requirement": {"topic": "Kafka", "length": "short", "keywords": ["log"]}})
    output = draft_prompt({"brief": brief, "passages": PASSAGES, "previous": None})
    system, user = output["messages"]
    assert system["role"] == "system"
    assert "JSON" in system["content"]
    assert user["role"] == "user"
    assert user["content"].startswith('Write an article about "Kafka" for general readers')
    assert "about 200 words" in user["content"]
    assert "keywords: log." in user["content"]
    assert output["sources"] == (
        "[kafka-log] Kafka keeps an append-only log.\n[es-basics] State is a fold of events."
    )
    assert output["sources"] in user["content"]
    assert "feedback" not in user["content"]


def test_later_prompt_hands_back_the_previous_draft_and_its_issues() -> None:
    """From the second draft on, the prompt lists the score, each issue and the previous draft."""
    brief = intake({"requirement": {"topic": "Kafka"}})
    previous = {"title": "Kafka 101", "body": "Kafka is a log."}
    output = draft_prompt(
        {
            "brief": brief,
            "passages": PASSAGES,
            "previous": previous,
            "score": 4,
            "issues": ["Explain offsets.", "Cite a source."],
        }
    )
    user = output["messages"][-1]["content"]
    assert "Reviewer feedback on your previous draft (score 4 of 10):" in user
    assert "- Explain offsets.\n- Cite a source." in user
    assert user.endswith("Previous draft: Kafka 101\nKafka is a log.")


def test_later_prompt_without_issues_still_asks_for_a_better_draft() -> None:
    """A low score with no issues listed still gives the writer something to act on."""
    output = draft_prompt(
        {"brief": {"topic": "Kafka"}, "previous": {"title": "T", "body": "B"}, "issues": []}
    )
    assert "- raise the overall quality" in output["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        (
            "Event sourcing with Kafka: the log is the database",
            "event-sourcing-with-kafka-the-log-is-the-database",
        ),
        ("  C'est   l'été! ", "c-est-l-t"),
        ("!!!", "article"),
    ],
)
def test_slug_is_lower_case_words_joined_by_dashes(title: str, expected: str) -> None:
    """A title's slug keeps letters and digits, one dash between runs, none at the ends."""
    assert slug(title) == expected


def test_publication_needs_a_title_a_body_and_a_topic() -> None:
    """An incomplete article is refused; an accepted one gets a URL by its title's slug."""
    with pytest.raises(ValueError, match="title, body and topic"):
        publication({"title": "T", "body": " ", "topic": "t"}, "http://h/articles", None)
    with pytest.raises(ValueError, match="title, body and topic"):
        publication(["T", "B", "t"], "http://h/articles", None)
    accepted = publication({"title": "A B", "body": "x", "topic": "t"}, "http://h/articles", "w")
    assert accepted == Publication("A B", "x", "t", "http://h/articles/a-b", "w")
