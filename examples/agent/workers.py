"""The agent's tools: deterministic workers the model can call, served next to the LLM tasks.

``orchestrator worker examples.agent.workers`` serves LLM_CHAT_COMPLETE and the other LLM
tasks plus the tools ``calculator`` and ``lookup``, which the loop's DYNAMIC task runs with input
``{"taskToExecute": name, "arguments": the call's arguments}``, and ``search_notes`` (the research
sub-workflow's first step). A tool never raises for a bad request: the problem becomes data the
model can read.

With ``AGENT_TRACE_FILE`` set, each tool call appends one JSON line ``{"task_id", "tool",
"start", "end"}`` (wall-clock seconds) to that file, for the benchmark's breakdown.
"""

from __future__ import annotations

import ast
import operator
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from orchestrator.worker import TaskContext
from workers.llm import LlmWorker

__all__ = ["FACTS", "NOTES", "calculate", "worker"]

Json = Any
MAX_EXPONENT = 100
MAX_EXPRESSION_CHARS = 200

FACTS: dict[str, str] = {
    "kafka": "Apache Kafka is a distributed, partitioned, replicated commit log.",
    "rocksdb": "RocksDB is an embedded key-value store built on a log-structured merge tree.",
    "conductor": "Netflix Conductor defines workflows as JSON lists of typed tasks.",
    "do_while": "A DO_WHILE task repeats its body while its loop condition holds.",
    "event sourcing": "Event sourcing stores every change as an event and folds them to state.",
}

NOTES: list[dict[str, str]] = [
    {
        "id": "note-1",
        "text": "Event sourcing keeps an append-only log of events; state is their fold.",
    },
    {
        "id": "note-2",
        "text": "Replaying the event log rebuilds the state after a crash.",
    },
    {
        "id": "note-3",
        "text": "Kafka transactions commit events, commands and offsets together.",
    },
    {
        "id": "note-4",
        "text": "Sourdough needs a starter, flour, water and patience.",
    },
]

_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_WORD = re.compile(r"[a-z0-9]+")

worker = LlmWorker(name="agent")


@worker.task("calculator")
def calculator(task_input: dict[str, Json], ctx: TaskContext) -> dict[str, Json]:
    """``{"arguments": {"expression"}}`` -> ``{"expression", "value"}`` or ``{..., "error"}``."""
    with _traced(ctx):
        expression = str(_arguments(task_input).get("expression") or "")
        try:
            return {"expression": expression, "value": calculate(expression)}
        except (ValueError, ZeroDivisionError, OverflowError) as exc:
            return {"expression": expression, "error": str(exc)}


@worker.task("lookup")
def lookup(task_input: dict[str, Json], ctx: TaskContext) -> dict[str, Json]:
    """``{"arguments": {"key"}}`` -> ``{"key", "found", "fact"}`` from the bundled fact table."""
    with _traced(ctx):
        key = str(_arguments(task_input).get("key") or "").strip().lower()
        fact = FACTS.get(key)
        return {"key": key, "found": fact is not None, "fact": fact}


@worker.task("search_notes")
def search_notes(task_input: dict[str, Json], ctx: TaskContext) -> dict[str, Json]:
    """``{"topic"}`` -> ``{"ids", "text"}``: the bundled notes sharing a word with the topic."""
    with _traced(ctx):
        words = set(_WORD.findall(str(task_input.get("topic") or "").lower()))
        hits = [n for n in NOTES if words & set(_WORD.findall(n["text"].lower()))]
        return {"ids": [n["id"] for n in hits], "text": " ".join(n["text"] for n in hits)}


def _arguments(task_input: dict[str, Json]) -> dict[str, Json]:
    """The tool call's arguments (an object; anything else counts as none)."""
    arguments = task_input.get("arguments")
    return arguments if isinstance(arguments, dict) else {}


def calculate(expression: str) -> float | int:
    """The value of an arithmetic expression (numbers, + - * / // % **, parentheses).

    Raises ValueError for anything else, so no name, call or attribute is ever evaluated.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from exc
    return _evaluate(tree.body)


def _evaluate(node: ast.expr) -> float | int:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"unsupported constant {node.value!r}")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent above {MAX_EXPONENT}")
        return _OPERATORS[type(node.op)](left, right)
    raise ValueError(f"unsupported element {type(node).__name__}")


@contextmanager
def _traced(ctx: TaskContext) -> Iterator[None]:
    """Append the call's wall-clock start and end to ``AGENT_TRACE_FILE``, if it is set."""
    start = time.time()
    yield
    path = os.environ.get("AGENT_TRACE_FILE")
    if path:
        line = {"task_id": ctx.task_id, "tool": ctx.task_type, "start": start, "end": time.time()}
        with open(path, "ab") as trace:
            trace.write(orjson.dumps(line) + b"\n")
