"""The customer-service example end to end: broker, processor and worker as child processes.

The tests share one stack of ``examples.support`` on the session's broker, against the fake
LLM of ``examples/support/fake_llm.json``; each plays the customer (and the tier-2 agent) of
sessions of its own with :class:`examples.support.Conversation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from examples.common import ExampleStack, Run
from examples.support import (
    EXAMPLE,
    FEEDBACK,
    GOODBYE,
    HUMAN,
    ORDER,
    QUESTION,
    Conversation,
    converse,
    tier2_reply,
)
from orchestrator.config import Settings
from orchestrator.engine.records import Event, SignalForwarded, TaskScheduled, WorkflowStatus
from tests.integration.conftest import shared_example_stack
from workers.llm.fake_script import Script

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Json = Any
UNCLEAR = "Can you do the thing with the stuff?"
assert EXAMPLE.fake_script is not None
SCRIPT = Script.of(orjson.loads(EXAMPLE.fake_script.read_bytes()))


def scripted(text: str, *, classify: bool = False) -> Json:
    """What the fake LLM answers to ``text``: a reply's content, or a classification's JSON."""
    content = f"Message to classify: {text}" if classify else text
    body = {"messages": [{"role": "user", "content": content}]}
    rule = next((r for r in SCRIPT.rules if r.applies("chat", body)), SCRIPT.default)
    message = rule.message(content).content
    return orjson.loads(message or "null") if classify else message


def scheduled(events: list[Event], ref_name: str) -> list[TaskScheduled]:
    """The TaskScheduled events of ``ref_name``, in order."""
    return [e for e in events if isinstance(e, TaskScheduled) and e.ref_name == ref_name]


def expected_transcript(customer: str = "Ada") -> list[dict[str, Json]]:
    """The four turns the scripted conversation records, as the session's output lists them."""
    farewell = (
        f"Thank you for contacting Northwind Shop, {customer}! Before you go: how would you "
        "rate this conversation from 1 to 5?"
    )
    handoff_reply = (
        f"Hi {customer}, Sam from tier 2 here. I asked DHL to prioritise order 48213; you will "
        "get an email with the new delivery slot today."
    )
    return [
        {"user": QUESTION, "route": "question", "by": "assistant", "reply": scripted(QUESTION)},
        {"user": ORDER, "route": "order_status", "by": "assistant", "reply": scripted(ORDER)},
        {"user": HUMAN, "route": "escalate", "by": "human", "reply": handoff_reply},
        {"user": GOODBYE, "route": "goodbye", "by": "assistant", "reply": farewell},
    ]


def summary(transcript: list[dict[str, Json]]) -> list[dict[str, Json]]:
    """The fields of each turn that :func:`expected_transcript` pins down."""
    return [{key: turn[key] for key in ("user", "route", "by", "reply")} for turn in transcript]


@pytest.fixture(scope="module")
def shared_stack(module_topics: Settings) -> Iterator[ExampleStack]:
    """The example's stack, shared by the module's tests: each starts sessions of its own ids."""
    with shared_example_stack(EXAMPLE, module_topics) as running:
        yield running


def test_scripted_conversation(stack: ExampleStack) -> None:
    """Replies from the KB, the order system and tier 2; the order number is remembered."""
    assert stack.llm is not None
    asked = len(stack.llm.requests)
    run = stack.start()
    state = stack.finish(run)
    events = run.client.history(run.workflow_id)
    requests = stack.llm.requests[asked:]

    assert state.status is WorkflowStatus.COMPLETED, state.reason
    output = state.output
    assert summary(output["transcript"]) == expected_transcript()
    for turn, text in zip(output["transcript"], [QUESTION, ORDER, HUMAN, GOODBYE], strict=True):
        classified = scripted(text, classify=True)
        assert (turn["intent"], turn["confidence"]) == (
            classified["intent"],
            classified["confidence"],
        )
    assert output["transcript"][0]["sources"][0] == "password-reset"
    assert output["slots"] == {"orderNumber": "48213"}
    assert output["feedback"] == FEEDBACK
    assert (output["turns"], output["escalated"], output["runs"]) == (4, True, 1)

    assert len(scheduled(events, "kb_index")) == 1, "the knowledge base is indexed once"
    assert len(scheduled(events, "user_message")) == 4
    (handoff,) = scheduled(events, "agent_handoff")
    assert handoff.task_id == "agent_handoff__3"
    assert handoff.input["assignee"] == "support-tier2"
    assert handoff.input["group"] == "support"
    assert handoff.input["escalation"] == [{"assignee": "support-lead", "dueIn": "30m"}]
    # Turn 3 names no order: the number comes from the state turn 2 left.
    assert handoff.input["message"] == HUMAN
    assert handoff.input["orderNumber"] == "48213"
    assert [t["user"] for t in handoff.input["transcript"]] == [QUESTION, ORDER]
    (lookup,) = scheduled(events, "order_lookup")
    assert lookup.input == {"orderNumber": "48213"}

    replies = [r.body for r in requests if r.path.endswith("/chat/completions")]
    answer = next(b for b in replies if b["messages"][-1]["content"] == QUESTION)
    assert "Article password-reset: To reset your password" in answer["messages"][0]["content"]
    order = next(b for b in replies if b["messages"][-1]["content"] == ORDER)
    assert [m["content"] for m in order["messages"][1:3]] == [QUESTION, scripted(QUESTION)]
    assert '"status":"shipped"' in order["messages"][0]["content"]


def test_low_confidence_escalates_to_a_human(stack: ExampleStack) -> None:
    """A message classified below the default threshold (0.5) goes to tier 2; 0.92 does not."""
    run = stack.start(input={"customer": "Bo"})
    chat = Conversation(run)
    turn = chat.send(UNCLEAR)
    handoff = chat.waiting("agent_handoff")
    assert handoff.input["assignee"] == "support-tier2"
    assert handoff.input["reason"] == "confidence 0.3 is below 0.5"
    assert handoff.input["orderNumber"] is None
    chat.answer(handoff, {"reply": "Happy to help: what do you need?", "resolved": False})
    unclear = chat.reply(turn)
    question = chat.say(QUESTION)
    chat.say(GOODBYE)
    chat.answer(chat.waiting("feedback"), {"rating": 9, "comment": "ok"})
    state = chat.finish()
    events = run.client.history(run.workflow_id)

    assert (unclear["intent"], unclear["confidence"], unclear["route"]) == (
        "question",
        0.3,
        "escalate",
    )
    assert (unclear["by"], unclear["resolved"]) == ("human", False)
    assert unclear["reply"] == "Happy to help: what do you need?"
    assert (question["route"], question["by"]) == ("question", "assistant")
    assert len(scheduled(events, "agent_handoff")) == 1
    assert state.output["escalated"] is True
    assert state.output["feedback"] == {"rating": None, "comment": "ok"}, "9 is out of 1..5"


def test_processor_killed_between_turns(stack: ExampleStack) -> None:
    """A crash between turns loses nothing: the same output as an uninterrupted session."""
    calm = stack.start(workflow_id="support-calm")
    converse(Conversation(calm))
    uninterrupted = Conversation(calm).finish()

    crashed = stack.start(workflow_id="support-crash")
    first = stack.processor

    def crash(turn: int) -> None:
        if turn == 2:  # the new processor may still be starting when turn 3's message comes
            stack.kill_processor()
            stack.start_processor()

    chat = Conversation(crashed)
    converse(chat, crash)
    state = chat.finish()
    events = crashed.client.history(crashed.workflow_id)
    second = stack.processor

    assert first is not None
    assert second is not None
    assert first.pid != second.pid
    assert first.returncode is not None, "the first processor was killed"
    assert uninterrupted.status is WorkflowStatus.COMPLETED, uninterrupted.reason
    assert state.status is WorkflowStatus.COMPLETED, state.reason
    assert state.output == uninterrupted.output
    assert summary(state.output["transcript"]) == expected_transcript()
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "no event twice"
    assert len(scheduled(events, "user_message")) == 4


def test_session_continues_as_new_with_its_state(stack: ExampleStack) -> None:
    """With maxTurnsPerRun 2, three turns take two linked runs; the second carries the state."""
    client = stack.client()
    base = client.start(
        EXAMPLE.workflow,
        input={"customer": "Cy", "maxTurnsPerRun": 2},
        workflow_id="support-long",
        correlation_id="ticket-7",
    )
    chat = Conversation(Run(client, base))
    order = chat.say(ORDER)
    turn = chat.send(HUMAN)
    handoff = chat.waiting("agent_handoff")
    chat.answer(handoff, tier2_reply(handoff))
    human = chat.reply(turn)
    chat.waiting("user_message")
    # The third message goes to the first run, which forwards it to its successor.
    client.signal(base, "user_message", output={"text": GOODBYE})
    goodbye = chat.reply(3)
    chat.answer(chat.waiting("feedback"), FEEDBACK)
    final = chat.finish()
    first = client.status(base)
    first_events = client.history(base)
    second_events = client.history(f"{base}~2")

    assert chat.runs == [base, f"{base}~2"]
    assert (order["turn"], human["turn"], goodbye["turn"]) == (1, 2, 3)
    assert "order 48213" in human["reply"]

    assert first.status is WorkflowStatus.COMPLETED
    assert first.continued_as == f"{base}~2"
    assert [t["user"] for t in first.output["transcript"]] == [ORDER, HUMAN]
    assert (first.output["feedback"], first.output["runs"]) == (None, 1)
    (forwarded,) = [e for e in first_events if isinstance(e, SignalForwarded)]
    assert (forwarded.to_workflow_id, forwarded.task_ref) == (f"{base}~2", "user_message")

    assert final.workflow_id == f"{base}~2"
    assert final.status is WorkflowStatus.COMPLETED, final.reason
    assert (final.continued_from, final.correlation_id) == (base, "ticket-7")
    carried = final.input["state"]
    assert carried["history"] == first.output["transcript"]
    assert (carried["slots"], carried["turns"], carried["runs"]) == ({"orderNumber": "48213"}, 2, 1)
    assert (final.input["customer"], final.input["maxTurnsPerRun"]) == ("Cy", 2)
    assert not scheduled(second_events, "kb_index"), "the index is built once per session"
    assert len(scheduled(second_events, "user_message")) == 1

    output = final.output
    assert [t["user"] for t in output["transcript"]] == [ORDER, HUMAN, GOODBYE]
    assert output["transcript"][:2] == first.output["transcript"]
    assert (output["turns"], output["runs"], output["escalated"]) == (3, 2, True)
    assert output["slots"] == {"orderNumber": "48213"}
    assert output["feedback"] == FEEDBACK
