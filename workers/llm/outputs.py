"""OpenAI responses turned into task outputs, with structured replies parsed and validated.

A reply that should be JSON and is not, or that breaks the task's ``jsonSchema``, is a
:class:`LlmReplyError`: retryable, since another sample of the model may well comply.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs; used through two calls
import orjson

from workers.llm.errors import LlmReplyError
from workers.llm.inputs import Generation

__all__ = ["chat_output", "embedding_vectors", "structured", "text_output", "usage"]

Json = Any
SHOWN_CHARS = 200
# Models in JSON mode still wrap their answer in a Markdown fence now and then.
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)


def usage(response: dict[str, Json]) -> dict[str, int]:
    """``{"promptTokens", "completionTokens", "totalTokens"}`` from OpenAI's ``usage``."""
    raw = response.get("usage")
    raw = raw if isinstance(raw, dict) else {}
    prompt, completion = _count(raw, "prompt_tokens"), _count(raw, "completion_tokens")
    total = _count(raw, "total_tokens") or prompt + completion
    return {"promptTokens": prompt, "completionTokens": completion, "totalTokens": total}


def chat_output(response: dict[str, Json], generation: Generation, task: str) -> dict[str, Json]:
    """The output of LLM_CHAT_COMPLETE: result, toolCalls, message, finishReason, usage, model."""
    choice = _first_choice(response, task)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise LlmReplyError(f"{task}: the reply's first choice has no message")
    calls = _tool_calls(message.get("tool_calls"), task)
    content = message.get("content")
    text = content if isinstance(content, str) else None
    # A reply that only calls tools has no content to parse.
    if calls and not text:
        result: Json = None
    else:
        result = structured(text or "", generation, task) if generation.structured else text
    # The assistant message as sent, ready to append to ``messages`` in an agent loop.
    reply = {"role": "assistant", "content": text}
    if calls:
        reply["tool_calls"] = message["tool_calls"]
    return {
        "result": result,
        "toolCalls": calls,
        "message": reply,
        "finishReason": choice.get("finish_reason"),
        "usage": usage(response),
        "model": response.get("model"),
    }


def text_output(response: dict[str, Json], generation: Generation, task: str) -> dict[str, Json]:
    """The output of LLM_TEXT_COMPLETE: result, finishReason, usage, model."""
    choice = _first_choice(response, task)
    text = choice.get("text")
    if not isinstance(text, str):
        raise LlmReplyError(f"{task}: the reply's first choice has no text")
    return {
        "result": structured(text, generation, task) if generation.structured else text,
        "finishReason": choice.get("finish_reason"),
        "usage": usage(response),
        "model": response.get("model"),
    }


def structured(text: str, generation: Generation, task: str) -> Json:
    """``text`` parsed as JSON and checked against the schema; LlmReplyError naming the problem."""
    fenced = _FENCE.match(text)
    try:
        value = orjson.loads(fenced.group("body") if fenced else text)
    except orjson.JSONDecodeError as exc:
        raise LlmReplyError(f"{task}: the reply is not JSON ({exc}): {_shown(text)}") from exc
    schema = generation.json_schema
    if schema is not None:
        validator = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            raise LlmReplyError(
                f"{task}: the reply does not match jsonSchema at {error.json_path}: {error.message}"
            )
    return value


def embedding_vectors(response: dict[str, Json], expected: int, task: str) -> list[list[float]]:
    """The vectors of an embeddings response in input order; LlmReplyError if any is missing."""
    data = response.get("data")
    if not isinstance(data, list) or len(data) != expected:
        count = len(data) if isinstance(data, list) else 0
        raise LlmReplyError(f"{task}: asked for {expected} embedding(s), got {count}")
    ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    vectors = []
    for item in ordered:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in vector
        ):
            raise LlmReplyError(f"{task}: an embedding is not a list of numbers")
        vectors.append([float(x) for x in vector])
    return vectors


def _first_choice(response: dict[str, Json], task: str) -> dict[str, Json]:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmReplyError(f"{task}: the reply has no choices")
    return choices[0]


def _tool_calls(raw: Json, task: str) -> list[dict[str, Json]]:
    """``[{"id", "name", "arguments"}]`` with the arguments parsed from their JSON text."""
    if not raw:
        return []
    if not isinstance(raw, list):
        raise LlmReplyError(f"{task}: the reply's tool_calls is not a list")
    calls = []
    for call in raw:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise LlmReplyError(f"{task}: a tool call of the reply names no function")
        calls.append(
            {
                "id": call.get("id"),
                "name": function["name"],
                "arguments": _arguments(function.get("arguments"), function["name"], task),
            }
        )
    return calls


def _arguments(raw: Json, name: str, task: str) -> Json:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise LlmReplyError(
            f"{task}: the arguments of tool call {name!r} are not JSON: {_shown(raw)}"
        ) from exc


def _count(raw: dict[str, Json], key: str) -> int:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _shown(text: str) -> str:
    return repr(text[:SHOWN_CHARS] + ("..." if len(text) > SHOWN_CHARS else ""))
