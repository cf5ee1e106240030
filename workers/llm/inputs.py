"""Each LLM task's input, read and checked, and the OpenAI request body it makes.

Field names are camelCase as in Conductor's LLM tasks (``maxTokens``, ``stopWords``,
``jsonOutput``); the bodies are OpenAI's (``max_tokens``, ``stop``, ``response_format``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs; used through two calls

from workers.llm.fields import Fields

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ChatRequest",
    "EmbedRequest",
    "Generation",
    "IndexRequest",
    "SearchRequest",
    "Target",
    "TextRequest",
]

Json = Any
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0
DEFAULT_TOP_K = 3
_MESSAGE_EXTRAS = ("name", "tool_call_id", "tool_calls")


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where a call goes and how long it may take: ``llmProvider``, ``baseUrl``, ``model``..."""

    provider: str | None
    base_url: str | None
    model: str | None
    timeout_s: float

    @classmethod
    def read(cls, fields: Fields) -> Target:
        """The target fields of any LLM task's input."""
        timeout = fields.number("timeoutSeconds", 0.001, MAX_TIMEOUT_S)
        return cls(
            provider=fields.text("llmProvider"),
            base_url=fields.text("baseUrl"),
            model=fields.text("model"),
            timeout_s=DEFAULT_TIMEOUT_S if timeout is None else timeout,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation:
    """Sampling and output-format options shared by chat and text completion."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    json_output: bool = False
    json_schema: dict[str, Json] | None = None
    schema_name: str = "output"

    @classmethod
    def read(cls, fields: Fields) -> Generation:
        """The generation fields; a ``jsonSchema`` that is not a valid schema fails for good."""
        schema = fields.mapping("jsonSchema")
        if schema is not None:
            try:
                jsonschema.validators.validator_for(schema).check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise fields.error(
                    "jsonSchema", f"is not a valid JSON Schema: {exc.message}"
                ) from exc
        return cls(
            temperature=fields.number("temperature", 0, 2),
            top_p=fields.number("topP", 0, 1),
            max_tokens=fields.whole("maxTokens", 1, 10_000_000),
            stop=fields.strings("stopWords"),
            json_output=fields.flag("jsonOutput"),
            json_schema=schema,
            schema_name=fields.text("jsonSchemaName") or "output",
        )

    @property
    def structured(self) -> bool:
        """Whether the reply is JSON to parse (``jsonOutput`` or ``jsonSchema``)."""
        return self.json_output or self.json_schema is not None

    def options(self) -> dict[str, Json]:
        """The sampling options of an OpenAI body, only those given."""
        body: dict[str, Json] = {}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.stop:
            body["stop"] = list(self.stop)
        return body

    def response_format(self) -> dict[str, Json] | None:
        """OpenAI's ``response_format``: a JSON schema, JSON mode, or none."""
        if self.json_schema is not None:
            schema = {"name": self.schema_name, "schema": self.json_schema}
            return {"type": "json_schema", "json_schema": schema}
        if self.json_output:
            return {"type": "json_object"}
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """``LLM_CHAT_COMPLETE``: messages, generation options, tools."""

    TASK = "LLM_CHAT_COMPLETE"

    target: Target
    generation: Generation
    messages: tuple[dict[str, Json], ...]
    tools: tuple[dict[str, Json], ...] = ()
    tool_choice: Json = None

    @classmethod
    def from_input(cls, task_input: Json) -> ChatRequest:
        """Read the task input; TerminalError naming the field if it cannot make a request."""
        fields = Fields(task_input, cls.TASK)
        messages = fields.objects("messages", required=True)
        if not messages:
            raise fields.error("messages", "must hold at least one message")
        return cls(
            target=Target.read(fields),
            generation=Generation.read(fields),
            messages=tuple(_message(fields, i, m) for i, m in enumerate(messages)),
            tools=fields.objects("tools"),
            tool_choice=fields.values.get("toolChoice"),
        )

    def body(self, model: str) -> dict[str, Json]:
        """The body of ``POST /chat/completions``."""
        body: dict[str, Json] = {"model": model, "messages": list(self.messages)}
        body.update(self.generation.options())
        response_format = self.generation.response_format()
        if response_format is not None:
            body["response_format"] = response_format
        if self.tools:
            body["tools"] = list(self.tools)
        if self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class TextRequest:
    """``LLM_TEXT_COMPLETE``: one prompt, generation options."""

    TASK = "LLM_TEXT_COMPLETE"

    target: Target
    generation: Generation
    prompt: str

    @classmethod
    def from_input(cls, task_input: Json) -> TextRequest:
        """Read the task input; TerminalError naming the field if it cannot make a request."""
        fields = Fields(task_input, cls.TASK)
        prompt = fields.text("prompt", required=True)
        assert prompt is not None
        return cls(target=Target.read(fields), generation=Generation.read(fields), prompt=prompt)

    def body(self, model: str) -> dict[str, Json]:
        """The body of ``POST /completions``."""
        return {"model": model, "prompt": self.prompt, **self.generation.options()}


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbedRequest:
    """``LLM_EMBED``: ``texts`` (or one ``text``) to embed."""

    TASK = "LLM_EMBED"

    target: Target
    texts: tuple[str, ...]
    dimensions: int | None = None

    @classmethod
    def from_input(cls, task_input: Json) -> EmbedRequest:
        """Read the task input; TerminalError naming the field if it cannot make a request."""
        fields = Fields(task_input, cls.TASK)
        texts = fields.strings("texts") if fields.has("texts") else fields.strings("text")
        if not texts:
            raise fields.error("texts", "is missing (give 'texts' or 'text')")
        return cls(target=Target.read(fields), texts=texts, dimensions=_dimensions(fields))


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexRequest:
    """``LLM_INDEX``: documents ``{id, text, metadata}`` to embed and store in ``index``."""

    TASK = "LLM_INDEX"

    target: Target
    index: str
    documents: tuple[tuple[str, str, dict[str, Json]], ...]
    dimensions: int | None = None

    @classmethod
    def from_input(cls, task_input: Json) -> IndexRequest:
        """Read the task input; TerminalError naming the field if it cannot make a request."""
        fields = Fields(task_input, cls.TASK)
        index = fields.text("index", required=True)
        assert index is not None
        documents = tuple(
            _document(fields, i, d)
            for i, d in enumerate(fields.objects("documents", required=True))
        )
        return cls(
            target=Target.read(fields),
            index=index,
            documents=documents,
            dimensions=_dimensions(fields),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchRequest:
    """``LLM_SEARCH``: the ``topK`` documents of ``index`` nearest to ``query``."""

    TASK = "LLM_SEARCH"

    target: Target
    index: str
    query: str
    top_k: int = DEFAULT_TOP_K
    min_score: float | None = None
    dimensions: int | None = None

    @classmethod
    def from_input(cls, task_input: Json) -> SearchRequest:
        """Read the task input; TerminalError naming the field if it cannot make a request."""
        fields = Fields(task_input, cls.TASK)
        index, query = fields.text("index", required=True), fields.text("query", required=True)
        assert index is not None
        assert query is not None
        return cls(
            target=Target.read(fields),
            index=index,
            query=query,
            top_k=fields.whole("topK", 1, 1000) or DEFAULT_TOP_K,
            min_score=fields.number("minScore", -1, 1),
            dimensions=_dimensions(fields),
        )


def embeddings_body(model: str, texts: tuple[str, ...], dimensions: int | None) -> dict[str, Json]:
    """The body of ``POST /embeddings``."""
    body: dict[str, Json] = {"model": model, "input": list(texts)}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def _message(fields: Fields, index: int, message: dict[str, Json]) -> dict[str, Json]:
    """An OpenAI message; Conductor's ``message`` key counts as ``content``."""
    where = f"messages[{index}]"
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise fields.error(f"{where}.role", f"must be a non-empty string, got {role!r}")
    content = message.get("content", message.get("message"))
    if content is None and not message.get("tool_calls"):
        raise fields.error(f"{where}.content", "is missing")
    if content is not None and not isinstance(content, str | list):
        raise fields.error(f"{where}.content", "must be a string or a list of content parts")
    extras = {key: message[key] for key in _MESSAGE_EXTRAS if message.get(key) is not None}
    return {"role": role, "content": content, **extras}


def _document(
    fields: Fields, index: int, document: dict[str, Json]
) -> tuple[str, str, dict[str, Json]]:
    where = f"documents[{index}]"
    doc_id, text, metadata = document.get("id"), document.get("text"), document.get("metadata")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id:
        raise fields.error(f"{where}.id", f"must be a non-empty string, got {doc_id!r}")
    if not isinstance(text, str):
        raise fields.error(f"{where}.text", f"must be a string, got {text!r}")
    if metadata is not None and not isinstance(metadata, dict):
        raise fields.error(f"{where}.metadata", "must be an object")
    return doc_id, text, metadata or {}


def _dimensions(fields: Fields) -> int | None:
    return fields.whole("dimensions", 1, 65_536)
