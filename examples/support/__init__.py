"""A customer-service agent: one long-lived session workflow that talks with a customer.

``support_session`` loops over turns. Each turn waits for the customer's message (a WAIT task
the client signals), classifies its intent with a JSON-schema LLM call, and then answers from
the knowledge base (LLM_SEARCH, then a reply LLM call with the articles and the dialogue
history), from the order system, or hands the turn to a human (a HUMAN task for tier 2). The
dialogue state (history, slots such as the order number, turn counts) lives in workflow
variables; after ``maxTurnsPerRun`` turns the session continues as a new run carrying that
state, and on goodbye it collects feedback and ends.

:class:`Conversation` plays the customer's side from outside: it sends messages, waits for the
replies and follows the session from run to run. :data:`EXAMPLE` is what
``python -m examples.support`` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from examples.common import Example, Run
from orchestrator.engine.evolve import fold
from orchestrator.engine.state import TaskState, WorkflowState

__all__ = [
    "EXAMPLE",
    "FEEDBACK",
    "GOODBYE",
    "HUMAN",
    "ORDER",
    "QUESTION",
    "Conversation",
    "converse",
    "drive",
    "tier2_reply",
]

Json = Any
T = TypeVar("T")
HERE = Path(__file__).parent
POLL_S = 0.2

QUESTION = "Hi! How do I reset my password?"
ORDER = "Where is my order 48213?"
HUMAN = "This is taking too long, I want to talk to a human."
GOODBYE = "That's all, thanks. Bye!"
FEEDBACK = {"rating": 5, "comment": "Quick answers, and a human when I needed one."}


class Conversation:
    """The customer's side of one session: send messages, read replies, answer waiting tasks.

    The session may span several runs (``<id>``, ``<id>~2``...) when it continues as new;
    every call looks at the run that serves the session now. Each waiting task is answered
    once, so a message is never signalled to a turn that already has one.
    """

    def __init__(self, run: Run, *, timeout: float = 60.0) -> None:
        self.client = run.client
        self.runs: list[str] = [run.workflow_id]
        self.timeout = timeout
        self._answered: set[tuple[str, str]] = set()

    @property
    def workflow_id(self) -> str:
        """The id of the latest run of the session seen so far."""
        return self.runs[-1]

    def state(self) -> WorkflowState:
        """The state of the run that serves the session now (following continued runs)."""
        return self._until(lambda: self._current()[0], "the session to begin")

    def waiting(self, ref_name: str) -> TaskState:
        """Wait until the task ``ref_name`` waits for an answer not yet given; return it."""

        def find() -> TaskState | None:
            state, continued = self._current()
            if state is None:
                return None
            for task in reversed(list(state.tasks.values())):
                fresh = (state.workflow_id, task.task_id) not in self._answered
                if task.ref_name == ref_name and task.awaiting_signal and fresh:
                    return task if not task.status.terminal else None
            if state.status.terminal and not continued:
                raise AssertionError(f"{state.workflow_id} ended {state.status} ({state.reason})")
            return None

        return self._until(find, f"{ref_name!r} to wait")

    def answer(self, task: TaskState, output: dict[str, Json]) -> None:
        """Complete the waiting ``task`` (from :meth:`waiting`) of the current run."""
        self._answered.add((self.workflow_id, task.task_id))
        self.client.signal(self.workflow_id, task.task_id, output=output)

    def send(self, text: str) -> int:
        """Send the customer's next message; return the number of the turn it starts."""
        task = self.waiting("user_message")
        self.answer(task, {"text": text})
        return int((task.input or {}).get("turn") or 0) + 1

    def reply(self, turn: int) -> dict[str, Json]:
        """Wait for the record of turn ``turn`` (1-based) in the dialogue history; return it."""

        def find() -> dict[str, Json] | None:
            state, continued = self._current()
            history = (state.variables.get("history") or []) if state else []
            if len(history) >= turn:
                return dict(history[turn - 1])
            if state is not None and state.status.terminal and not continued:
                raise AssertionError(f"{state.workflow_id} ended {state.status} ({state.reason})")
            return None

        return self._until(find, f"turn {turn}'s reply")

    def say(self, text: str) -> dict[str, Json]:
        """Send a message and wait for its turn's record (reply, intent, confidence...)."""
        return self.reply(self.send(text))

    def finish(self) -> WorkflowState:
        """Wait until the session's last run ends; return its state."""

        def find() -> WorkflowState | None:
            state, continued = self._current()
            if state is None:
                return None
            return state if state.status.terminal and not continued else None

        return self._until(find, "the session to end")

    def _current(self) -> tuple[WorkflowState | None, bool]:
        """The latest run's state (None before it begins); True if its successor has not begun."""
        while True:
            state = fold(self.client.history(self.workflow_id))  # type: ignore[arg-type]
            if state is None or state.continued_as is None:
                return state, False
            if not self.client.history(state.continued_as):
                return state, True
            self.runs.append(state.continued_as)

    def _until(self, find: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + self.timeout
        while (found := find()) is None:
            if time.monotonic() >= deadline:
                raise AssertionError(f"waited {self.timeout:g} s for {what} in {self.workflow_id}")
            time.sleep(POLL_S)
        return found


def tier2_reply(handoff: TaskState) -> dict[str, Json]:
    """What the tier-2 agent answers: it reads the order number the session remembered."""
    data = handoff.input or {}
    order = data.get("orderNumber") or "(none)"
    reply = (
        f"Hi {data.get('customer')}, Sam from tier 2 here. I asked DHL to prioritise order "
        f"{order}; you will get an email with the new delivery slot today."
    )
    return {"reply": reply, "resolved": True}


def converse(chat: Conversation, after_turn: Callable[[int], None] | None = None) -> None:
    """Play the customer: a question, an order, a human, goodbye; then rate the session.

    ``after_turn(n)`` runs once turn ``n``'s reply is in (tests crash things there).
    """
    pause = after_turn or (lambda turn: None)
    for text in (QUESTION, ORDER):
        record = chat.say(text)
        _show(text, record)
        pause(record["turn"])
    turn = chat.send(HUMAN)
    handoff = chat.waiting("agent_handoff")
    click.echo(f"  (handed to {handoff.input.get('assignee')}: {handoff.input.get('reason')})")
    chat.answer(handoff, tier2_reply(handoff))
    _show(HUMAN, chat.reply(turn))
    pause(turn)
    _show(GOODBYE, chat.say(GOODBYE))
    chat.answer(chat.waiting("feedback"), FEEDBACK)
    click.echo(f"customer rates {FEEDBACK['rating']}/5: {FEEDBACK['comment']}")


def drive(run: Run) -> None:
    """The example's customer: :func:`converse` on ``run``."""
    converse(Conversation(run))


def _show(text: str, turn: dict[str, Json]) -> None:
    click.echo(f"customer: {text}")
    click.echo(f"{turn.get('by')} [{turn.get('intent')} {turn.get('confidence')}]: {turn['reply']}")


EXAMPLE = Example(
    name="support",
    workflow="support_session",
    definitions=[HERE / "definitions" / "support_session.json"],
    worker_modules=["examples.support.workers"],
    input={"customer": "Ada", "confidenceThreshold": 0.5, "maxTurnsPerRun": 20},
    fake_script=HERE / "fake_llm.json",
    drive=drive,
    timeout_s=120.0,
)
