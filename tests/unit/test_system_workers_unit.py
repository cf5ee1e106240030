"""The system tasks' input parsing, outputs and failure reasons, with no network and no broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from orchestrator.config import Settings
from orchestrator.errors import TerminalError
from orchestrator.worker import TaskContext
from workers.http_task import (
    DEFAULT_CONNECT_TIMEOUT_MS,
    DEFAULT_READ_TIMEOUT_MS,
    HttpConnectionError,
    HttpRejectedError,
    HttpRequest,
    HttpStatusError,
    HttpTask,
    display_uri,
    response_output,
    status_error,
)
from workers.publish_task import (
    ClusterPublisher,
    KafkaRequest,
    check_cluster,
    check_not_engine_topic,
    sink_topic,
)
from workers.system import SystemWorker, worker

URI = "http://service.test/items"
SETTINGS = Settings(bootstrap="broker-a:9092,broker-b:9092", topic_prefix="orch.")
CONTEXT = TaskContext(
    workflow_id="wf-1",
    task_id="task-1",
    task_type="EVENT",
    attempt=1,
    ref_name="notify",
    workflow_name="orders",
)


def call(handler: Callable[[httpx.Request], httpx.Response], task_input: Any) -> Any:
    """Run the HTTP task on ``task_input`` against a mock transport serving ``handler``."""
    return asyncio.run(HttpTask(httpx.MockTransport(handler)).call(task_input))


def fails(error: type[Exception], handler: Callable[[httpx.Request], httpx.Response]) -> str:
    """The reason the HTTP task gives when a GET of URI fails with ``error``."""
    with pytest.raises(error) as caught:
        call(handler, {"uri": URI, "readTimeOut": 250})
    return str(caught.value)


def respond(status: int, body: bytes = b"", **headers: str) -> httpx.Response:
    """A response to a GET of URI."""
    return httpx.Response(status, content=body, headers=headers, request=httpx.Request("GET", URI))


# HTTP input ------------------------------------------------------------------------------------


def test_http_request_is_read_from_http_request_or_the_top_level() -> None:
    """The same fields give the same request nested under http_request or at the top level."""
    fields = {"uri": URI, "method": "post", "body": {"a": 1}, "readTimeOut": 500}
    nested = HttpRequest.from_input({"http_request": fields, "ignored": True})
    assert nested == HttpRequest.from_input(fields)
    assert (nested.method, nested.read_timeout_ms) == ("POST", 500)


def test_http_request_defaults_follow_conductor() -> None:
    """Method GET, JSON accept and content type, the documented timeouts."""
    request = HttpRequest.from_input({"http_request": {"uri": URI}})
    assert request.method == "GET"
    assert (request.accept, request.content_type) == ("application/json", "application/json")
    assert request.connect_timeout_ms == DEFAULT_CONNECT_TIMEOUT_MS
    assert request.read_timeout_ms == DEFAULT_READ_TIMEOUT_MS


def test_zero_timeout_means_no_limit() -> None:
    """connectionTimeOut/readTimeOut 0 lift the limit, as in Conductor; numeric strings count."""
    request = HttpRequest.from_input({"uri": URI, "connectionTimeOut": 0, "readTimeOut": "1500"})
    timeout = request.timeout()
    assert (timeout.connect, timeout.read, timeout.write) == (None, 1.5, 1.5)


@pytest.mark.parametrize(
    ("task_input", "named"),
    [
        ({}, "'uri' is missing"),
        ({"uri": 42}, "'uri' must be a string"),
        ({"uri": "service.test/items"}, "'uri' must be an absolute http(s) URL"),
        ({"uri": "ftp://service.test/x"}, "'uri' must be an absolute http(s) URL"),
        ({"uri": URI, "method": "FETCH"}, "'method' must be one of GET, HEAD"),
        ({"uri": URI, "headers": ["x"]}, "'headers' must be an object"),
        ({"uri": URI, "headers": {"X": {"a": 1}}}, "'headers.X' must be a scalar"),
        ({"uri": URI, "readTimeOut": -1}, "'readTimeOut' must be a whole number"),
        ({"uri": URI, "connectionTimeOut": "soon"}, "'connectionTimeOut' must be a whole"),
        ({"uri": URI, "accept": 3}, "'accept' must be a string"),
        ({"http_request": "GET /"}, "'http_request' must be an object"),
        ([URI], "HTTP task input must be an object"),
    ],
)
def test_invalid_http_input_is_terminal_and_names_the_field(task_input: Any, named: str) -> None:
    """Input that cannot make a request fails for good, saying which field is wrong."""
    with pytest.raises(TerminalError, match=named.replace("(", r"\(").replace(")", r"\)")):
        HttpRequest.from_input(task_input)


def test_request_headers_add_accept_and_content_type_unless_given() -> None:
    """Accept always, Content-Type only with a body; explicit headers win, any case."""
    plain = HttpRequest.from_input({"uri": URI, "headers": {"X-Id": 7, "X-Tag": ["a", "b"]}})
    assert plain.request_headers() == [
        ("X-Id", "7"),
        ("X-Tag", "a"),
        ("X-Tag", "b"),
        ("Accept", "application/json"),
    ]
    given = HttpRequest.from_input(
        {"uri": URI, "body": "x", "headers": {"accept": "text/plain", "content-type": "text/csv"}}
    )
    assert given.request_headers() == [("accept", "text/plain"), ("content-type", "text/csv")]


def test_body_is_sent_as_json_text_or_form() -> None:
    """A JSON value is encoded, a string goes as is, an object with form content is a form."""
    assert HttpRequest.from_input({"uri": URI, "body": {"a": [1]}}).content() == b'{"a":[1]}'
    assert HttpRequest.from_input({"uri": URI, "body": '{"raw":1}'}).content() == b'{"raw":1}'
    form = {
        "uri": URI,
        "body": {"q": "a b", "n": 2},
        "contentType": "application/x-www-form-urlencoded",
    }
    assert HttpRequest.from_input(form).content() == b"q=a+b&n=2"
    assert HttpRequest.from_input({"uri": URI}).content() is None


# HTTP output and reasons -----------------------------------------------------------------------


def test_response_output_has_conductors_shape() -> None:
    """statusCode, reasonPhrase, headers as lists of values, body parsed when JSON."""
    response = httpx.Response(
        200,
        content=b'{"id": 3}',
        headers=[
            ("Content-Type", "application/json"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
        ],
    )
    assert response_output(response) == {
        "statusCode": 200,
        "reasonPhrase": "OK",
        "headers": {
            "Content-Type": ["application/json"],
            "Set-Cookie": ["a=1", "b=2"],
            "Content-Length": ["9"],
        },
        "body": {"id": 3},
    }


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/problem+json; charset=utf-8", b'{"e": 1}', {"e": 1}),
        ("application/json", b"not json", "not json"),
        ("text/plain", b'{"e": 1}', '{"e": 1}'),
        ("text/plain", b"", None),
    ],
)
def test_response_body_is_json_only_when_the_response_says_so(
    content_type: str, body: bytes, expected: Any
) -> None:
    """JSON media types are parsed (falling back to text), everything else stays text."""
    response = httpx.Response(200, content=body, headers={"Content-Type": content_type})
    assert response_output(response)["body"] == expected


def test_non_2xx_reason_names_status_uri_and_the_start_of_the_body() -> None:
    """The reason is 'HTTP <code> <phrase> from <uri>: <first 200 chars of the body>'."""
    request = HttpRequest.from_input({"uri": URI})
    error = status_error(request, respond(503, b"x" * 300))
    assert isinstance(error, HttpStatusError)
    assert str(error) == f"HTTP 503 Service Unavailable from {URI}: {'x' * 200}"
    empty = status_error(request, respond(500))
    assert str(empty) == f"HTTP 500 Internal Server Error from {URI}: (empty body)"
    assert status_error(request, respond(204)) is None


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, HttpRejectedError),
        (404, HttpRejectedError),
        (408, HttpStatusError),
        (429, HttpStatusError),
        (304, HttpStatusError),
        (502, HttpStatusError),
    ],
)
def test_only_4xx_other_than_408_and_429_is_terminal(status: int, error: type) -> None:
    """A 4xx the client caused fails for good; timeouts, throttling and 5xx are retried."""
    found = status_error(HttpRequest.from_input({"uri": URI}), respond(status))
    assert type(found) is error
    assert isinstance(found, TerminalError) == (error is HttpRejectedError)


def test_display_uri_hides_passwords() -> None:
    """A password in the uri never reaches a failure reason."""
    assert display_uri("https://bob:s3cret@api.test/x?q=1") == "https://bob:***@api.test/x?q=1"
    assert display_uri(URI) == URI


def test_call_sends_the_request_and_returns_the_response() -> None:
    """The handler sends method, headers and body, and wraps the response under 'response'."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"ok": True})

    output = call(handler, {"http_request": {"uri": URI, "method": "PUT", "body": [1, 2]}})
    assert output["response"]["statusCode"] == 201
    assert output["response"]["body"] == {"ok": True}
    assert (seen[0].method, seen[0].content) == ("PUT", b"[1,2]")
    assert seen[0].headers["content-type"] == "application/json"


def test_timeouts_and_connection_errors_are_retryable_and_name_uri_and_limit() -> None:
    """No answer fails the attempt (retryable), naming the uri and the limit that passed."""

    def raising(error: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            raise error("boom", request=request)

        return handler

    read = fails(HttpConnectionError, raising(httpx.ReadTimeout))
    assert read == f"GET {URI} sent no response within 250 ms (readTimeOut)"
    connect = fails(HttpConnectionError, raising(httpx.ConnectTimeout))
    limit = f"{DEFAULT_CONNECT_TIMEOUT_MS} ms (connectionTimeOut)"
    assert connect == f"connecting to {URI} timed out after {limit}"
    refused = fails(HttpConnectionError, raising(httpx.ConnectError))
    assert refused.startswith(f"cannot connect to {URI}: boom")
    assert "readTimeOut=250 ms" in refused
    assert not issubclass(HttpConnectionError, TerminalError)


def test_call_fails_with_the_status_reason() -> None:
    """A 404 from the service raises the terminal HttpRejectedError with the body's start."""
    reason = fails(HttpRejectedError, lambda _: httpx.Response(404, text="no such item"))
    assert reason == f"HTTP 404 Not Found from {URI}: no such item"


# KAFKA_PUBLISH and EVENT input -----------------------------------------------------------------


def test_kafka_request_encodes_value_key_and_headers() -> None:
    """A JSON value is encoded, a string value goes as is; keys and headers become bytes."""
    request = KafkaRequest.from_input(
        {"kafka_request": {"topic": "orders", "value": {"id": 1}, "key": 7, "headers": {"h": "v"}}}
    )
    assert (request.topic, request.value, request.key) == ("orders", b'{"id":1}', b"7")
    assert request.headers == (("h", b"v"),)
    text = KafkaRequest.from_input({"topic": "orders", "value": "plain"})
    assert (text.value, text.key, text.bootstrap) == (b"plain", None, None)


@pytest.mark.parametrize(
    ("task_input", "named"),
    [
        ({"kafka_request": {"value": 1}}, "'topic' must name a Kafka topic"),
        ({"kafka_request": {"topic": "bad topic", "value": 1}}, "'topic' must name a Kafka topic"),
        ({"kafka_request": {"topic": "t"}}, "'value' is missing"),
        ({"kafka_request": {"topic": "t", "value": 1, "headers": 3}}, "'headers' must be"),
        ({"kafka_request": {"topic": "t", "value": 1, "bootStrapServers": 9}}, "bootStrapServers"),
        ({"kafka_request": {"topic": "t", "value": 2**70}}, "'value' cannot be encoded as JSON"),
    ],
)
def test_invalid_kafka_request_is_terminal_and_names_the_field(task_input: Any, named: str) -> None:
    """A request that cannot be published fails for good, naming the field."""
    with pytest.raises(TerminalError, match=named):
        KafkaRequest.from_input(task_input)


def test_only_the_engines_own_cluster_is_accepted() -> None:
    """bootStrapServers must be absent or name the configured cluster (order and case aside)."""
    check_cluster(None, SETTINGS)
    check_cluster(" BROKER-B:9092, broker-a:9092", SETTINGS)
    with pytest.raises(TerminalError, match="publishing to other clusters is not enabled"):
        check_cluster("elsewhere:9092", SETTINGS)


def test_engine_topics_are_refused() -> None:
    """Topics under the engine's prefix (or its fixed names without one) are not publishable."""
    assert check_not_engine_topic("orders", SETTINGS) == "orders"
    with pytest.raises(TerminalError, match="belongs to the engine"):
        check_not_engine_topic("orch.results", SETTINGS)
    bare = Settings(bootstrap="b:9092", topic_prefix="")
    for topic in ("results", "events", "tasks.HTTP"):
        with pytest.raises(TerminalError, match="belongs to the engine"):
            check_not_engine_topic(topic, bare)


@pytest.mark.parametrize(
    ("sink", "topic"),
    [("kafka:orders", "orders"), ("KAFKA: order.events ", "order.events")],
)
def test_kafka_sinks_name_their_topic(sink: str, topic: str) -> None:
    """A 'kafka:<topic>' sink publishes to <topic>."""
    assert sink_topic(sink) == topic


@pytest.mark.parametrize(
    ("sink", "named"),
    [
        ("sqs:my-queue", "EVENT sink 'sqs:my-queue' is not supported"),
        ("conductor", "EVENT sink 'conductor' is not supported"),
        ("kafka", "EVENT sink 'kafka' is not supported"),
        ("kafka:", "EVENT sink 'kafka:' must name a Kafka topic"),
        (None, "EVENT task input 'sink' is missing"),
    ],
)
def test_unsupported_sinks_are_terminal_and_named(sink: Any, named: str) -> None:
    """Any sink but kafka:<topic> fails for good, quoting the sink."""
    with pytest.raises(TerminalError, match=named):
        sink_topic(sink)


def test_publishers_refuse_bad_requests_before_touching_the_broker() -> None:
    """Bad clusters, engine topics and sinks fail before any Kafka client is created."""
    publisher = ClusterPublisher(SETTINGS)
    other = {"topic": "t", "value": 1, "bootStrapServers": "elsewhere:9092"}
    with pytest.raises(TerminalError, match="other clusters"):
        publisher.kafka_publish({"kafka_request": other})
    with pytest.raises(TerminalError, match="belongs to the engine"):
        publisher.kafka_publish({"kafka_request": {"topic": "orch.events", "value": 1}})
    with pytest.raises(TerminalError, match="not supported"):
        publisher.event({"sink": "sqs:q", "x": 1}, CONTEXT)
    assert publisher._producer is None


def test_publisher_without_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a running worker the publisher's cluster comes from ORCH_BOOTSTRAP."""
    monkeypatch.setenv("ORCH_BOOTSTRAP", "from-env:9092")
    publisher = ClusterPublisher()
    assert publisher.settings.bootstrap == "from-env:9092"
    publisher.bind(SETTINGS)
    assert publisher.settings is SETTINGS


def test_system_worker_declares_the_three_system_tasks() -> None:
    """The module's worker serves HTTP (async), KAFKA_PUBLISH and EVENT."""
    assert isinstance(worker, SystemWorker)
    assert worker.name == "system"
    assert worker.task_types == ("HTTP", "KAFKA_PUBLISH", "EVENT")
    assert [handler.is_async for handler in worker._handlers.values()] == [True, False, False]
