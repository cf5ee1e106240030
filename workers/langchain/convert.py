"""What a runnable returns, as the JSON a task output holds.

Messages become ``{"role", "content"}`` (OpenAI's role names; an AI message with tool calls adds
``toolCalls``, a tool message ``toolCallId``), pydantic models and dataclasses their dump,
mappings and sequences are converted item by item, and strings, numbers, booleans and ``None``
stay as they are. Anything else raises :class:`RunnableOutputError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import BaseModel

from orchestrator.errors import TerminalError

__all__ = ["RunnableOutputError", "message_json", "to_json"]

Json = Any


class RunnableOutputError(TerminalError):
    """A runnable returned a value with no JSON form (a task output must be JSON)."""


def to_json(value: Any) -> Json:
    """``value`` as JSON (see the module docstring); raise :class:`RunnableOutputError`."""
    match value:
        case None | bool() | int() | float() | str():
            return value
        case BaseMessage():
            return message_json(value)
        case BaseModel():
            return value.model_dump(mode="json")
        case Mapping():
            return {_key(key): to_json(item) for key, item in value.items()}
        case list() | tuple():
            return [to_json(item) for item in value]
        case _ if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return to_json(dataclasses.asdict(value))
        case _:
            raise RunnableOutputError(
                f"the runnable returned a {type(value).__name__}, which has no JSON form"
            )


def message_json(message: BaseMessage) -> dict[str, Json]:
    """A chat message as ``{"role", "content"}``, plus its tool calls or the call it answers."""
    output: dict[str, Json] = {"role": _role(message), "content": to_json(message.content)}
    if isinstance(message, AIMessage) and message.tool_calls:
        output["toolCalls"] = [
            {"id": call["id"], "name": call["name"], "arguments": to_json(call["args"])}
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        output["toolCallId"] = message.tool_call_id
    return output


def _role(message: BaseMessage) -> str:
    match message:
        case HumanMessage():
            return "user"
        case AIMessage():
            return "assistant"
        case SystemMessage():
            return "system"
        case ToolMessage():
            return "tool"
        case ChatMessage():
            return message.role
        case _:
            return message.type


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise RunnableOutputError(
            f"the runnable returned a mapping with a {type(key).__name__} key"
        )
    return key
