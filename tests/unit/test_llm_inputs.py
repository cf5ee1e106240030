"""The LLM tasks' input reading, request bodies, reply parsing, configuration and vector stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import TerminalError
from workers.llm import JsonVectorStore, LlmConfig, MemoryVectorStore
from workers.llm.errors import IndexNotFoundError, LlmConfigError, LlmReplyError, VectorStoreError
from workers.llm.fake_script import Script, count_tokens, embed_text, request_text
from workers.llm.inputs import (
    DEFAULT_TIMEOUT_S,
    ChatRequest,
    EmbedRequest,
    Generation,
    IndexRequest,
    SearchRequest,
    TextRequest,
)
from workers.llm.outputs import chat_output, structured, usage
from workers.llm.tokens import record_tokens
from workers.llm.vectors import Document, cosine

TASK = "LLM_CHAT_COMPLETE"
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "tags"],
}


def chat(content: str | None, **message: Any) -> dict[str, Any]:
    """An OpenAI chat completion response with one choice."""
    return {
        "model": "m-1",
        "choices": [
            {
                "message": {"role": "assistant", "content": content, **message},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


# Request bodies --------------------------------------------------------------------------------


def test_chat_body_maps_conductor_fields_to_openai() -> None:
    """camelCase task fields become OpenAI's body; Conductor's `message` counts as `content`."""
    request = ChatRequest.from_input(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "message": "hi", "ignored": 1},
            ],
            "temperature": 0.2,
            "topP": 0.9,
            "maxTokens": 50,
            "stopWords": ["END"],
            "jsonSchema": SCHEMA,
            "tools": [{"type": "function", "function": {"name": "lookup"}}],
            "toolChoice": "auto",
        }
    )
    assert request.body("gpt-x") == {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": SCHEMA},
        },
        "tools": [{"type": "function", "function": {"name": "lookup"}}],
        "tool_choice": "auto",
    }
    assert request.target.timeout_s == DEFAULT_TIMEOUT_S


def test_json_output_asks_for_json_mode_and_plain_asks_for_nothing() -> None:
    """`jsonOutput` sets response_format json_object; without it there is no response_format."""
    messages = [{"role": "user", "content": "x"}]
    json_mode = ChatRequest.from_input({"messages": messages, "jsonOutput": True}).body("m")
    plain = ChatRequest.from_input({"messages": messages}).body("m")
    assert json_mode["response_format"] == {"type": "json_object"}
    assert plain == {"model": "m", "messages": messages}


def test_text_and_embedding_inputs() -> None:
    """Text completion takes `prompt`; embeddings take `texts` or one `text`."""
    text = TextRequest.from_input({"prompt": "Once", "maxTokens": 5, "timeoutSeconds": 2})
    assert text.body("m") == {"model": "m", "prompt": "Once", "max_tokens": 5}
    assert text.target.timeout_s == 2
    assert EmbedRequest.from_input({"text": "a"}).texts == ("a",)
    assert EmbedRequest.from_input({"texts": ["a", "b"], "dimensions": 8}).dimensions == 8


@pytest.mark.parametrize(
    ("request_type", "task_input", "named"),
    [
        (ChatRequest, [], "task input must be an object"),
        (ChatRequest, {}, "'messages' is missing"),
        (ChatRequest, {"messages": []}, "'messages' must hold at least one message"),
        (ChatRequest, {"messages": ["hi"]}, "'messages[0]' must be an object"),
        (ChatRequest, {"messages": [{"content": "hi"}]}, "'messages[0].role'"),
        (ChatRequest, {"messages": [{"role": "user"}]}, "'messages[0].content' is missing"),
        (
            ChatRequest,
            {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "'temperature'",
        ),
        (
            ChatRequest,
            {"messages": [{"role": "user", "content": "x"}], "maxTokens": 0},
            "'maxTokens'",
        ),
        (
            ChatRequest,
            {"messages": [{"role": "user", "content": "x"}], "stopWords": [1]},
            "'stopWords'",
        ),
        (
            ChatRequest,
            {"messages": [{"role": "user", "content": "x"}], "jsonOutput": "yes"},
            "'jsonOutput'",
        ),
        (
            ChatRequest,
            {"messages": [{"role": "user", "content": "x"}], "jsonSchema": {"type": "nope"}},
            "'jsonSchema' is not a valid JSON Schema",
        ),
        (TextRequest, {"prompt": ""}, "'prompt' is missing"),
        (EmbedRequest, {}, "'texts' is missing"),
        (IndexRequest, {"index": "i", "documents": [{"text": "t"}]}, "'documents[0].id'"),
        (IndexRequest, {"index": "i", "documents": [{"id": "a"}]}, "'documents[0].text'"),
        (SearchRequest, {"index": "i"}, "'query' is missing"),
        (SearchRequest, {"index": "i", "query": "q", "topK": 0}, "'topK'"),
        (SearchRequest, {"index": "i", "query": "q", "timeoutSeconds": -1}, "'timeoutSeconds'"),
    ],
)
def test_bad_input_is_terminal_and_names_the_field(
    request_type: Any, task_input: Any, named: str
) -> None:
    """Input that cannot make a request fails for good, naming the field."""
    with pytest.raises(TerminalError, match="task input") as caught:
        request_type.from_input(task_input)
    assert named in str(caught.value)


# Replies ---------------------------------------------------------------------------------------


def test_structured_reply_is_parsed_even_in_a_markdown_fence() -> None:
    """JSON replies are parsed; a ```json fence around them is tolerated."""
    generation = Generation(json_schema=SCHEMA)
    reply = '```json\n{"title": "T", "tags": ["a"]}\n```'
    assert structured(reply, generation, TASK) == {"title": "T", "tags": ["a"]}


def test_reply_breaking_the_schema_is_retryable_and_names_the_violation() -> None:
    """A reply that breaks jsonSchema fails retryably, naming where and what."""
    with pytest.raises(LlmReplyError) as caught:
        structured('{"title": "T", "tags": [1]}', Generation(json_schema=SCHEMA), TASK)
    assert not isinstance(caught.value, TerminalError)
    assert "does not match jsonSchema at $.tags[0]: 1 is not of type 'string'" in str(caught.value)


def test_reply_that_is_not_json_is_retryable() -> None:
    """A reply in JSON mode that does not parse fails retryably and shows its start."""
    with pytest.raises(LlmReplyError, match=r"the reply is not JSON \(.*\): 'Sure! Here you go'"):
        structured("Sure! Here you go", Generation(json_output=True), TASK)


def test_chat_output_parses_tool_calls_and_usage() -> None:
    """Tool calls come out with parsed arguments; usage is camelCase."""
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]
    response = chat(None, tool_calls=calls)
    output = chat_output(response, Generation(json_schema=SCHEMA), TASK)
    assert output == {
        "result": None,
        "toolCalls": [{"id": "c1", "name": "f", "arguments": {"x": 1}}],
        "message": {"role": "assistant", "content": None, "tool_calls": calls},
        "finishReason": "stop",
        "usage": {"promptTokens": 7, "completionTokens": 3, "totalTokens": 10},
        "model": "m-1",
    }


def test_tool_call_arguments_that_are_not_json_fail_retryably() -> None:
    """Unparseable tool-call arguments fail the attempt, naming the tool."""
    bad = [{"id": "c1", "function": {"name": "lookup", "arguments": "{x"}}]
    with pytest.raises(LlmReplyError, match="tool call 'lookup' are not JSON"):
        chat_output(chat(None, tool_calls=bad), Generation(), TASK)


def test_missing_choices_and_usage() -> None:
    """No choices is a reply error; a missing usage counts zero tokens."""
    with pytest.raises(LlmReplyError, match="no choices"):
        chat_output({"choices": []}, Generation(), TASK)
    assert usage({}) == {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}


# Configuration ---------------------------------------------------------------------------------


def test_key_goes_only_to_the_providers_own_origin() -> None:
    """A task's baseUrl on another origin gets no API key; the same origin keeps it."""
    config = LlmConfig(base_url="https://llm.example/v1", api_key="sk-1", model="m")
    assert config.endpoint(None, None, TASK).api_key is not None
    same = config.endpoint(None, "https://llm.example/v2", TASK)
    other = config.endpoint(None, "https://evil.example/v1", TASK)
    assert same.api_key is not None
    assert other.api_key is None
    assert other.url("chat/completions") == "https://evil.example/v1/chat/completions"


def test_named_providers_read_their_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORCH_LLM_PROVIDERS names providers; each key comes from its own variable."""
    monkeypatch.setenv(
        "ORCH_LLM_PROVIDERS",
        '{"local": {"baseUrl": "http://127.0.0.1:1/v1", "apiKeyEnv": "LOCAL_KEY", "model": "l"}}',
    )
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    endpoint = LlmConfig.from_env().endpoint("local", None, TASK)
    assert endpoint.api_key is not None
    assert (endpoint.api_key.get_secret_value(), endpoint.model) == ("sk-local", "l")
    assert "sk-openai" not in repr(LlmConfig.from_env())
    with pytest.raises(
        TerminalError, match="'llmProvider' 'nope' is unknown; known: local, openai"
    ):
        LlmConfig.from_env().endpoint("nope", None, TASK)


def test_config_reads_only_its_own_variables() -> None:
    """from_env reads OPENAI_* and ORCH_LLM_*, never generic names like MODEL or BASE_URL."""
    env = {"BASE_URL": "http://wrong", "MODEL": "wrong", "ORCH_LLM_MODEL": "m"}
    config = LlmConfig.from_env(env)
    assert (config.base_url, config.model) == ("https://api.openai.com/v1", "m")
    with pytest.raises(LlmConfigError, match=r"providers\.x\.baseUrl"):
        LlmConfig.from_env({"ORCH_LLM_PROVIDERS": '{"x": {"url": "http://a"}}'})
    with pytest.raises(LlmConfigError, match="invalid"):
        LlmConfig.from_env({"ORCH_LLM_PROVIDERS": "{not json"})


# Vector stores ---------------------------------------------------------------------------------


def docs(*items: tuple[str, list[float]]) -> list[Document]:
    """Documents with the given ids and vectors."""
    return [Document(doc_id, f"text {doc_id}", vector, {"n": doc_id}) for doc_id, vector in items]


def test_json_store_persists_upserts_and_ranks_by_cosine(tmp_path: Path) -> None:
    """Documents survive a new store on the same directory; a re-added id replaces the old one."""
    store = JsonVectorStore(tmp_path)
    store.add("kb", docs(("a", [1, 0]), ("b", [0, 1]), ("c", [1, 1])))
    store.add("kb", docs(("b", [-1, 0])))
    hits = JsonVectorStore(tmp_path).search("kb", [1, 0.1], 3)
    assert [h.id for h in hits] == ["a", "c", "b"]
    assert hits[0].metadata == {"n": "a"}
    assert hits[2].score == pytest.approx(cosine([1, 0.1], [-1, 0]))


def test_search_sees_another_writers_additions(tmp_path: Path) -> None:
    """A store reloads an index file another store instance rewrote."""
    reader, writer = JsonVectorStore(tmp_path), JsonVectorStore(tmp_path)
    writer.add("kb", docs(("a", [1, 0])))
    assert [h.id for h in reader.search("kb", [1, 0], 5)] == ["a"]
    writer.add("kb", docs(("b", [1, 0.01])))
    assert [h.id for h in reader.search("kb", [1, 0], 5)] == ["a", "b"]


def test_store_errors() -> None:
    """Unknown index, bad name and mixed dimensions are errors naming the problem."""
    store = MemoryVectorStore()
    with pytest.raises(IndexNotFoundError, match="no index named 'kb'"):
        store.search("kb", [1.0], 1)
    with pytest.raises(VectorStoreError, match="must match"):
        store.add("../etc", docs(("a", [1.0])))
    store.add("kb", docs(("a", [1.0, 0.0])))
    with pytest.raises(VectorStoreError, match="mix vectors of \\[2, 3\\] dimensions"):
        store.add("kb", docs(("b", [1.0, 0.0, 0.0])))
    with pytest.raises(VectorStoreError, match="query has 3"):
        store.search("kb", [1.0, 0.0, 0.0], 1)


# The fake's deterministic parts ----------------------------------------------------------------


def test_fake_embeddings_are_deterministic_and_shared_words_are_similar() -> None:
    """The same text gives the same unit vector; texts sharing words are closer."""
    kafka = embed_text("Kafka partitions keep offsets")
    assert kafka == embed_text("kafka partitions keep offsets")
    assert len(kafka) == 64
    assert sum(x * x for x in kafka) == pytest.approx(1.0)
    query = embed_text("how do kafka offsets work")
    assert cosine(query, kafka) > cosine(query, embed_text("baking sourdough bread"))
    assert count_tokens(" two  words ") == 2


def test_fake_rules_match_by_substring_regex_scope_endpoint_and_times() -> None:
    """Rules apply by text, scope and endpoint; `times` ends a rule."""
    script = Script.of(
        [
            {"match": "hello", "reply": "hi", "times": 1},
            {"regex": "^sys", "scope": "any", "reply": "any"},
            {"endpoint": "embeddings", "status": 429},
        ]
    )
    body = {
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}]
    }
    assert request_text("chat", body) == "hello"
    assert request_text("chat", body, "any") == "sys\nhello"
    first, second, third = script.rules
    assert first.applies("chat", body)
    assert second.applies("chat", body)
    assert not second.applies("embeddings", {"input": "sys"})
    assert third.applies("embeddings", {"input": "x"})
    assert not third.applies("chat", body)
    assert first.message("hello").content == "hi"
    assert script.default.message("hello").content == "echo: hello"


def test_token_usage_is_counted_in_the_metric() -> None:
    """record_tokens adds prompt and completion tokens to orch_llm_tokens_total by model."""
    metrics = pytest.importorskip("orchestrator.observability.metrics")
    record_tokens("unit-model", {"promptTokens": 5, "completionTokens": 2, "totalTokens": 7})
    text = metrics.render_prometheus()[0].decode()
    assert 'orch_llm_tokens_total{kind="prompt",model="unit-model"} 5.0' in text
    assert 'orch_llm_tokens_total{kind="completion",model="unit-model"} 2.0' in text
