"""The content pipeline example end to end: broker, processor and workers as child processes.

The tests share one stack of ``examples.content`` on the session's broker, against the
fake LLM (the first quality check scores 4, the next 8.5, so the drafting loop runs twice) and a
real publication endpoint on 127.0.0.1. The tests play the editor themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from examples.common import ExampleStack, Run
from examples.content import (
    FAKE_SCRIPT,
    REQUIREMENT,
    content_example,
    editor,
    workflow_input,
)
from examples.content.receiver import PublicationReceiver
from orchestrator.config import Settings
from orchestrator.engine.records import Event, LoopIterated, TaskScheduled, TaskStatus
from orchestrator.engine.state import WorkflowState
from tests.helpers import assert_eventually
from tests.integration.conftest import shared_example_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Json = Any
RUN_TIMEOUT_S = 90.0


def scripted_drafts() -> tuple[Json, Json, list[str]]:
    """The first and the revised draft, and the first quality check's issues, from the script."""
    rules = orjson.loads(FAKE_SCRIPT.read_bytes())["rules"]
    by_match = {rule["match"]: rule["json"] for rule in rules if "times" not in rule}
    first_check = next(rule["json"] for rule in rules if rule.get("times") == 1)
    return by_match["Write an article"], by_match["Reviewer feedback"], first_check["issues"]


FIRST_DRAFT, FINAL_DRAFT, FIRST_ISSUES = scripted_drafts()


def expected_output(receiver: PublicationReceiver) -> Json:
    """The output of an approved run: the revised draft, published, after two drafts."""
    return {
        "title": FINAL_DRAFT["title"],
        "url": f"{receiver.publish_url}/event-sourcing-with-kafka-the-log-is-the-database",
        "drafts": 2,
        "score": 8.5,
        "sources": ["es-basics", "snapshots", "cqrs", "kafka-event-store"],
    }


@pytest.fixture(scope="module")
def shared_stack(module_topics: Settings) -> Iterator[ExampleStack]:
    """The example's stack, shared by the module's tests. No run starts with its default input:
    each test starts runs of its own whose input names its own receiver, and plays the editor."""
    example = dataclasses.replace(content_example(publish_url=""), input={}, drive=None)
    with shared_example_stack(example, module_topics) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[PublicationReceiver]:
    """A publication endpoint on 127.0.0.1."""
    with PublicationReceiver() as instance:
        yield instance


def history(run: Run) -> list[Event]:
    """Every event of the run, in order."""
    return list(run.client.history(run.workflow_id))


def finish(run: Run) -> WorkflowState:
    """Wait for the run's end."""
    return run.wait(timeout=RUN_TIMEOUT_S)


def test_approved_article_is_published_after_two_drafts(
    stack: ExampleStack, receiver: PublicationReceiver
) -> None:
    """Two drafts (the second with the first's issues), review by 'editor', one POST, the URL."""
    run = stack.start(input=workflow_input(receiver.publish_url))
    review = run.waiting_task("review", timeout=RUN_TIMEOUT_S)
    assert review.input["assignee"] == "editor"
    assert review.input["group"] == "editors"
    assert review.input["draft"] == FINAL_DRAFT["body"]
    assert review.input["score"] == 8.5
    assert review.input["escalation"] == [{"assignee": "chief-editor", "dueIn": "1h"}]
    assert receiver.publications == []
    run.answer("review", {"approved": True, "comments": "Ship it."})
    state = finish(run)
    events = history(run)

    assert state.status == "COMPLETED", state.reason
    assert state.output == expected_output(receiver)
    loops = [(e.iteration, e.again) for e in events if isinstance(e, LoopIterated)]
    assert loops == [(1, True), (2, False)]
    prompts = {e.task_id: e.input for e in events if isinstance(e, TaskScheduled)}
    assert prompts["prompt__1"]["previous"] is None
    assert prompts["prompt__2"]["previous"] == FIRST_DRAFT
    assert prompts["prompt__2"]["issues"] == FIRST_ISSUES
    revision = prompts["draft__2"]["messages"][-1]["content"]
    assert all(issue in revision for issue in FIRST_ISSUES)
    [article] = receiver.publications
    assert (article.title, article.body) == (FINAL_DRAFT["title"], FINAL_DRAFT["body"])
    assert article.topic == REQUIREMENT["topic"]
    assert article.idempotency_key == run.workflow_id


def test_rejected_article_fails_the_run_with_the_comments(
    stack: ExampleStack, receiver: PublicationReceiver
) -> None:
    """A rejection ends the run FAILED with the editor's comments, and nothing is published."""
    comments = "Too shallow: say how schemas evolve."
    run = stack.start(input=workflow_input(receiver.publish_url))
    editor(approved=False, comments=comments)(run)
    state = finish(run)
    events = history(run)

    assert state.status == "FAILED"
    assert state.reason == f"rejected by the editor: {comments}"
    assert state.output["approved"] is False
    assert state.output["comments"] == comments
    assert state.output["drafts"] == 2
    scheduled = [e.task_id for e in events if isinstance(e, TaskScheduled)]
    assert "rejected" in scheduled
    assert "publish" not in scheduled
    assert receiver.publications == []


def test_processor_killed_mid_run_gives_the_same_output_and_one_post(
    stack: ExampleStack, receiver: PublicationReceiver
) -> None:
    """Killed after the first quality check and again during the review: same output, one POST."""
    run = stack.start(input=workflow_input(receiver.publish_url))

    def first_check_done() -> bool:
        task = run.state().tasks.get("quality__1")
        return task is not None and task.status == TaskStatus.COMPLETED

    assert_eventually(first_check_done, timeout=RUN_TIMEOUT_S, message="quality__1 done")
    stack.kill_processor()
    stack.start_processor()
    run.waiting_task("review", timeout=RUN_TIMEOUT_S)
    stack.kill_processor()
    stack.start_processor()
    run.answer("review", {"approved": True, "comments": "Ship it."})
    state = finish(run)
    events = history(run)

    assert state.status == "COMPLETED", state.reason
    assert state.output == expected_output(receiver)
    attempts = [(e.task_id, e.attempt) for e in events if isinstance(e, TaskScheduled)]
    assert len(attempts) == len(set(attempts)), "a task attempt was scheduled twice"
    assert [e.iteration for e in events if isinstance(e, LoopIterated)] == [1, 2]
    assert len(receiver.publications) == 1


def test_requirement_without_topic_fails_with_a_clear_reason(
    stack: ExampleStack, receiver: PublicationReceiver
) -> None:
    """No topic: the intake fails for good, the run FAILED naming the topic, nothing else runs."""
    requirement = {"audience": "backend engineers", "keywords": ["kafka"]}
    run = stack.start(input=workflow_input(receiver.publish_url, requirement))
    state = finish(run)
    events = history(run)

    assert state.status == "FAILED"
    assert state.reason is not None
    assert "the requirement has no topic" in state.reason
    scheduled = [e.task_id for e in events if isinstance(e, TaskScheduled)]
    assert scheduled == ["intake"], "the intake is not retried and nothing runs after it"
    assert receiver.publications == []
