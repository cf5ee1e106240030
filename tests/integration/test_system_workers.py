"""The system worker on the real broker: HTTP against a loopback service, KAFKA_PUBLISH, EVENT.

One SystemWorker serves the whole module (joining its consumer groups once); each test produces
ExecuteTask commands to ``tasks.<TYPE>`` and reads the TaskResult back from ``results``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import orjson
import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.cimpl import NewTopic

from orchestrator.config import Settings
from orchestrator.engine.records import ExecuteTask, ResultStatus, TaskResult
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import admin_client, make_consumer, make_producer, produce_and_wait
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics, ensure_task_topic, ensure_topics
from tests.helpers import assert_eventually
from workers.system import SystemWorker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

WAIT_S = 20.0
SLOW_S = 5.0
REPO = Path(__file__).resolve().parents[2]


# A loopback HTTP service -----------------------------------------------------------------------


class _Service(BaseHTTPRequestHandler):
    """Endpoints for every outcome: JSON, text, echo, 503, 404, 429 and a slow one."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Answer by path."""
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match url.path:
            case "/json":
                self._send(200, "application/json", b'{"hello": "world", "n": [1, 2]}')
            case "/text":
                self._send(200, "text/plain; charset=utf-8", b"plain text")
            case "/echo":
                headers = {name.lower(): value for name, value in self.headers.items()}
                echo = {"method": self.command, "headers": headers, "body": body.decode()}
                self._send(200, "application/json", orjson.dumps(echo))
            case "/unavailable":
                self._send(503, "text/plain", b"try again later")
            case "/throttled":
                self._send(429, "text/plain", b"slow down")
            case "/slow":
                time.sleep(float(parse_qs(url.query).get("s", [SLOW_S])[0]))
                self._send(200, "text/plain", b"finally")
            case _:
                self._send(404, "text/plain", b"no such thing")

    def do_POST(self) -> None:
        """Answer like GET."""
        self.do_GET()

    def do_DELETE(self) -> None:
        """Answer like GET."""
        self.do_GET()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Service", "test")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hung up (the read-timeout test does)."""


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """The base URL of the loopback HTTP service."""
    server = _Server(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, name="http-service", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# The running worker and its results ------------------------------------------------------------


@dataclass
class System:
    """A running SystemWorker, a producer of task commands and a reader of results."""

    settings: Settings
    producer: Producer
    results: Consumer
    seen: dict[str, TaskResult]

    def run(self, task_type: str, task_input: Any) -> TaskResult:
        """Send a command of ``task_type`` with ``task_input``; wait for its result."""
        task = ExecuteTask(
            workflow_id=f"wf-{uuid4().hex[:8]}",
            task_id=f"task-{uuid4().hex[:8]}",
            attempt=1,
            task_type=task_type,
            ref_name=f"{task_type.lower()}_ref",
            input=task_input,
            workflow_name="system_test",
        )
        topic = ensure_task_topic(admin_client(self.settings), self.settings, task_type)
        partition = partition_for(task.workflow_id, self.settings.partitions)
        produce_and_wait(
            self.producer, topic, task.workflow_id, CODEC.encode(task), partition=partition
        )
        return assert_eventually(
            lambda: self._result(task.task_id), timeout=WAIT_S, message=f"no result for {task}"
        )

    def _result(self, task_id: str) -> TaskResult | None:
        for message in self.results.consume(100, 0.1):
            if message.error() is None:
                record = CODEC.decode(message.value())
                if isinstance(record, TaskResult):
                    self.seen[record.task_id] = record
        return self.seen.get(task_id)


@pytest.fixture(scope="module")
def system(broker_bootstrap: str) -> Iterator[System]:
    """A SystemWorker serving the module's own topics."""
    settings = Settings(bootstrap=broker_bootstrap, topic_prefix=f"s{uuid4().hex[:8]}.")
    ensure_topics(admin_client(settings), settings, ["HTTP", "KAFKA_PUBLISH", "EVENT"])
    results = make_consumer(settings)
    topic = Topics.from_settings(settings).results
    results.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    producer = make_producer(settings)
    worker, stop = SystemWorker(), threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(settings,), kwargs={"stop": stop}, daemon=True
    )
    thread.start()
    yield System(settings, producer, results, {})
    stop.set()
    thread.join(WAIT_S)
    results.close()
    assert not thread.is_alive(), "the system worker did not stop"


def create_topic(settings: Settings, topic: str, partitions: int = 1) -> str:
    """Create ``topic`` (KAFKA_PUBLISH leaves topic creation to their owners); return its name."""
    spec = NewTopic(
        topic, num_partitions=partitions, replication_factor=settings.replication_factor
    )
    admin = admin_client(settings)  # kept referenced until the creation is confirmed
    admin.create_topics([spec])[topic].result(10)
    return topic


def read_back(settings: Settings, topic: str, partition: int, offset: int) -> Message:
    """The record at ``offset`` of ``topic`` [``partition``]."""
    consumer = make_consumer(settings)
    consumer.assign([TopicPartition(topic, partition, offset)])
    try:
        return assert_eventually(
            lambda: next((m for m in consumer.consume(1, 0.1) if m.error() is None), None),
            timeout=WAIT_S,
            message=f"no record at {topic} [{partition}] @ {offset}",
        )
    finally:
        consumer.close()


# HTTP ------------------------------------------------------------------------------------------


def test_http_get_completes_with_conductors_response(system: System, service: str) -> None:
    """A 200 JSON response completes the task with statusCode, reasonPhrase, headers and body."""
    result = system.run("HTTP", {"http_request": {"uri": f"{service}/json"}})
    assert result.status is ResultStatus.COMPLETED, result.reason
    response = result.output["response"]
    assert (response["statusCode"], response["reasonPhrase"]) == (200, "OK")
    assert response["body"] == {"hello": "world", "n": [1, 2]}
    assert response["headers"]["X-Service"] == ["test"]
    assert response["headers"]["Content-Type"] == ["application/json"]


def test_http_post_from_top_level_input_sends_body_and_headers(
    system: System, service: str
) -> None:
    """Top-level uri/method/body/headers work; a JSON body is encoded and typed."""
    result = system.run(
        "HTTP",
        {
            "uri": f"{service}/echo",
            "method": "POST",
            "headers": {"X-Request-Id": "r-1"},
            "body": {"order": 7},
        },
    )
    assert result.status is ResultStatus.COMPLETED, result.reason
    echo = result.output["response"]["body"]
    assert (echo["method"], orjson.loads(echo["body"])) == ("POST", {"order": 7})
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["accept"] == "application/json"
    assert echo["headers"]["x-request-id"] == "r-1"


def test_http_text_response_body_is_text(system: System, service: str) -> None:
    """A non-JSON response body is output as text."""
    result = system.run("HTTP", {"http_request": {"uri": f"{service}/text", "accept": "*/*"}})
    assert result.status is ResultStatus.COMPLETED, result.reason
    assert result.output["response"]["body"] == "plain text"


def test_http_503_fails_the_attempt_retryably(system: System, service: str) -> None:
    """A 5xx fails with FAILED (retryable) and a reason naming status, uri and body."""
    uri = f"{service}/unavailable"
    result = system.run("HTTP", {"http_request": {"uri": uri}})
    assert result.status is ResultStatus.FAILED
    assert result.reason == f"HTTP 503 Service Unavailable from {uri}: try again later"
    assert result.error_type == "HttpStatusError"


def test_http_429_is_retryable(system: System, service: str) -> None:
    """Throttling is worth a retry."""
    result = system.run("HTTP", {"http_request": {"uri": f"{service}/throttled"}})
    assert result.status is ResultStatus.FAILED
    assert result.reason is not None
    assert result.reason.startswith("HTTP 429 Too Many Requests from")


def test_http_404_fails_the_task_for_good(system: System, service: str) -> None:
    """A 4xx other than 408/429 is FAILED_WITH_TERMINAL_ERROR."""
    uri = f"{service}/missing"
    result = system.run("HTTP", {"http_request": {"uri": uri, "method": "DELETE"}})
    assert result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR
    assert result.reason == f"HTTP 404 Not Found from {uri}: no such thing"
    assert result.error_type == "HttpRejectedError"


def test_http_read_timeout_fails_fast_and_names_the_limit(system: System, service: str) -> None:
    """A response slower than readTimeOut fails (retryable) well before the service answers."""
    uri = f"{service}/slow"
    started = time.monotonic()
    result = system.run("HTTP", {"http_request": {"uri": uri, "readTimeOut": 300}})
    assert time.monotonic() - started < SLOW_S
    assert result.status is ResultStatus.FAILED
    assert result.reason == f"GET {uri} sent no response within 300 ms (readTimeOut)"
    assert result.error_type == "HttpConnectionError"


def test_http_connection_refused_is_retryable(system: System) -> None:
    """Nobody listening fails the attempt with a reason naming the uri."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}/nobody"
    result = system.run("HTTP", {"http_request": {"uri": uri, "connectionTimeOut": 2000}})
    assert result.status is ResultStatus.FAILED
    assert result.reason is not None
    assert result.reason.startswith(f"cannot connect to {uri}: ")
    assert "connectionTimeOut=2000 ms" in result.reason


def test_http_invalid_input_is_terminal(system: System) -> None:
    """A missing uri fails the task for good, naming the field."""
    result = system.run("HTTP", {"http_request": {"method": "GET"}})
    assert result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR
    assert result.reason == "HTTP task input 'uri' is missing"


# KAFKA_PUBLISH and EVENT -----------------------------------------------------------------------


def test_kafka_publish_writes_the_record_and_outputs_where(system: System) -> None:
    """The value (JSON), key and headers land on the topic at the output's partition/offset."""
    topic = create_topic(system.settings, f"ext-{uuid4().hex[:8]}.orders", partitions=3)
    request = {
        "topic": topic,
        "value": {"order": 7, "items": ["a"]},
        "key": "customer-1",
        "headers": {"source": "workflow"},
        "bootStrapServers": system.settings.bootstrap,
    }
    result = system.run("KAFKA_PUBLISH", {"kafka_request": request})
    assert result.status is ResultStatus.COMPLETED, result.reason
    assert result.output["topic"] == topic
    message = read_back(system.settings, topic, result.output["partition"], result.output["offset"])
    assert orjson.loads(message.value()) == {"order": 7, "items": ["a"]}
    assert message.key() == b"customer-1"
    assert message.headers() == [("source", b"workflow")]


def test_kafka_publish_sends_a_string_value_as_is(system: System) -> None:
    """A string value is not JSON-quoted."""
    topic = create_topic(system.settings, f"ext-{uuid4().hex[:8]}.text")
    result = system.run("KAFKA_PUBLISH", {"kafka_request": {"topic": topic, "value": "hi"}})
    assert result.status is ResultStatus.COMPLETED, result.reason
    message = read_back(system.settings, topic, result.output["partition"], result.output["offset"])
    assert (message.value(), message.key()) == (b"hi", None)


def test_kafka_publish_to_another_cluster_is_terminal(system: System) -> None:
    """A bootStrapServers other than the engine's cluster fails the task for good."""
    request = {"topic": "ext.x", "value": 1, "bootStrapServers": "elsewhere.test:9092"}
    result = system.run("KAFKA_PUBLISH", {"kafka_request": request})
    assert result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR
    assert result.reason is not None
    assert result.reason.startswith("publishing to other clusters is not enabled")


def test_kafka_publish_to_an_engine_topic_is_terminal(system: System) -> None:
    """A workflow cannot write into the engine's own log."""
    results = Topics.from_settings(system.settings).results
    result = system.run("KAFKA_PUBLISH", {"kafka_request": {"topic": results, "value": {}}})
    assert result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR
    assert result.reason is not None
    assert "belongs to the engine" in result.reason


def test_event_publishes_its_input_to_a_new_kafka_sink_topic(system: System) -> None:
    """EVENT creates the sink's topic and publishes the input but the sink, keyed by workflow."""
    topic = f"ext-{uuid4().hex[:8]}.events"
    sink = f"kafka:{topic}"
    result = system.run("EVENT", {"sink": sink, "orderId": 7, "status": "shipped"})
    assert result.status is ResultStatus.COMPLETED, result.reason
    output = result.output
    assert (output["sink"], output["topic"], output["published"]) == (sink, topic, True)
    message = read_back(system.settings, topic, output["partition"], output["offset"])
    payload = orjson.loads(message.value())
    assert payload == {
        "orderId": 7,
        "status": "shipped",
        "workflowInstanceId": result.workflow_id,
        "workflowType": "system_test",
    }
    assert message.key() == result.workflow_id.encode()
    assert dict(message.headers() or []) == {
        "workflow_id": result.workflow_id.encode(),
        "task_id": result.task_id.encode(),
    }


def test_event_with_an_unsupported_sink_is_terminal(system: System) -> None:
    """An sqs sink fails the task for good, naming the sink."""
    result = system.run("EVENT", {"sink": "sqs:orders-queue", "orderId": 7})
    assert result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR
    assert result.reason == (
        "EVENT sink 'sqs:orders-queue' is not supported: only 'kafka:<topic>' sinks are enabled"
    )


# The deployed module ---------------------------------------------------------------------------


def test_cli_worker_publishes_to_the_cluster_its_flags_name(broker_bootstrap: str) -> None:
    """`orchestrator --bootstrap B worker workers.system` publishes to B, its own cluster."""
    settings = Settings(bootstrap=broker_bootstrap, topic_prefix=f"c{uuid4().hex[:8]}.")
    ensure_topics(admin_client(settings), settings, ["KAFKA_PUBLISH"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "--bootstrap",
            settings.bootstrap,
            "--topic-prefix",
            settings.topic_prefix,
            "worker",
            "workers.system",
        ],
        cwd=REPO,
        env={**env, "ORCH_LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = make_consumer(settings)
    topic = Topics.from_settings(settings).results
    results.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    try:
        system = System(settings, make_producer(settings), results, {})
        out = create_topic(settings, f"ext-{uuid4().hex[:8]}.cli")
        request = {"topic": out, "value": {"via": "cli"}, "bootStrapServers": settings.bootstrap}
        result = system.run("KAFKA_PUBLISH", {"kafka_request": request})
        assert result.status is ResultStatus.COMPLETED, result.reason
        assert result.worker_id.startswith("system@")
        output = result.output
        message = read_back(settings, out, output["partition"], output["offset"])
        assert orjson.loads(message.value()) == {"via": "cli"}
    finally:
        results.close()
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
        child.wait(WAIT_S)
