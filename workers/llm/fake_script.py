"""The fake LLM's script: rules that decide each reply, and the deterministic parts of a reply.

A script is a JSON list of rules, or an object ``{"rules": [...], "default": {...}, "models":
[...], "dimensions": 64}``. The first rule that applies to a request answers it:

- ``match``: a substring of the request's text (case-sensitive);
- ``regex``: a regular expression searched in the request's text;
- ``scope``: ``last_user`` (default), the text is the last user message; ``any``, every message;
- ``endpoint``: ``chat``, ``completions``, ``embeddings`` or ``models``; without it the rule
  applies to chat and completions only;
- ``reply``: the content, or ``{"content": str or null, "tool_calls": [{"id"?, "name",
  "arguments": an object or its JSON text}]}``;
- ``json``: a JSON value sent as the content's text (instead of ``reply``);
- ``status``: the HTTP status (default 200); another one answers with an OpenAI error body;
- ``error``: that error's message;
- ``delay_ms``: wait this long before answering;
- ``times``: apply at most this many times, then never again (null: always);
- ``finish_reason``: instead of ``stop`` (or ``tool_calls`` when the reply calls tools).

The text of a completions request is its prompt; of an embeddings request, its inputs joined by
newlines. When no rule applies, ``default`` does (it has no ``match``); without one the reply
is ``"echo: <the text>"``. JSON mode and ``response_format`` change nothing: the script's text
is sent as is. Usage counts whitespace-separated tokens; embeddings hash each word into
``dimensions`` buckets (default 64) and normalise, so texts sharing words are similar.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Endpoint",
    "Reply",
    "Rule",
    "Script",
    "ToolCall",
    "count_tokens",
    "embed_text",
    "request_text",
]

Json = Any
Endpoint = Literal["chat", "completions", "embeddings", "models"]
DEFAULT_DIMENSIONS = 64
_WORD = re.compile(r"[a-z0-9]+")


class ToolCall(BaseModel):
    """A function the scripted reply calls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    name: str
    arguments: Json = Field(default_factory=dict)

    def arguments_text(self) -> str:
        """The arguments as the JSON text OpenAI sends (a string stays as written)."""
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()


class Reply(BaseModel):
    """A scripted assistant message: content, tool calls or both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)


class Rule(BaseModel):
    """One scripted answer and the requests it applies to (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: str | None = None
    regex: str | None = None
    scope: Literal["last_user", "any"] = "last_user"
    endpoint: Endpoint | None = None
    reply: str | Reply | None = None
    json_value: Json = Field(default=None, alias="json")
    status: int = Field(default=200, ge=100, le=599)
    error: str | None = None
    delay_ms: int = Field(default=0, ge=0)
    times: int | None = Field(default=None, ge=0)
    finish_reason: str | None = None

    def applies(self, endpoint: Endpoint, body: Json) -> bool:
        """Whether the rule answers a request of ``endpoint`` with ``body`` (``times`` aside)."""
        if self.endpoint is None and endpoint not in ("chat", "completions"):
            return False
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        text = request_text(endpoint, body, self.scope)
        if self.match is not None and self.match not in text:
            return False
        return self.regex is None or re.search(self.regex, text) is not None

    def message(self, text: str) -> Reply:
        """The assistant message this rule sends for a request whose text is ``text``."""
        if self.json_value is not None:
            return Reply(content=orjson.dumps(self.json_value).decode())
        if isinstance(self.reply, Reply):
            return self.reply
        if isinstance(self.reply, str):
            return Reply(content=self.reply)
        return Reply(content=f"echo: {text}")


class Script(BaseModel):
    """Rules tried in order, the default answer, the listed models and the embedding size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[Rule] = Field(default_factory=list)
    default: Rule = Rule()
    models: list[str] = Field(default_factory=lambda: ["fake-chat", "fake-embedding"])
    dimensions: int = Field(default=DEFAULT_DIMENSIONS, ge=1, le=4096)

    @classmethod
    def of(cls, script: Json) -> Script:
        """A script from its JSON form: a list of rules or the whole object (None: no rules)."""
        if script is None:
            return cls()
        if isinstance(script, Script):
            return script
        if isinstance(script, list):
            return cls(rules=[Rule.model_validate(rule) for rule in script])
        return cls.model_validate(script)


def request_text(endpoint: Endpoint, body: Json, scope: str = "last_user") -> str:
    """The text rules match: the last user message (or every message), the prompt, the inputs."""
    if not isinstance(body, dict):
        return ""
    if endpoint == "chat":
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if scope == "any":
            return "\n".join(_content_text(m.get("content")) for m in messages)
        users = [m for m in messages if m.get("role") == "user"]
        return _content_text(users[-1].get("content")) if users else ""
    if endpoint == "completions":
        return _content_text(body.get("prompt"))
    if endpoint == "embeddings":
        return _content_text(body.get("input"))
    return ""


def count_tokens(text: str) -> int:
    """Tokens as the fake counts them: whitespace-separated words."""
    return len(text.split())


def embed_text(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A unit vector of hashed lower-case words: the same text always gives the same vector."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "big") % dimensions
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [round(x / norm, 8) for x in vector] if norm else vector


def _content_text(content: Json) -> str:
    """Text of a message content, a prompt or an input: a string, or the strings in a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (p.get("text") if isinstance(p, dict) else p for p in content)
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""
