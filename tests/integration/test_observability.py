"""Tracing, metrics and the health port of a processor and a worker on the real broker."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from confluent_kafka import Message, TopicPartition
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import ExecuteTask, WorkflowStarted, WorkflowStatus
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import admin_client, make_consumer
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics, ensure_task_topic
from orchestrator.observability import tracing
from orchestrator.observability.health import serve_health
from orchestrator.observability.metrics import render_prometheus
from orchestrator.observability.propagation import PARENT_SPAN_ID, header, parse_traceparent
from orchestrator.processor.catchup import catch_up
from orchestrator.processor.loop import Processor
from orchestrator.processor.store import PartitionStore
from orchestrator.worker import Worker
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

WAIT_S = 30.0


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span of this process, kept in memory; tracing is off again afterwards."""
    exporter = InMemorySpanExporter()
    tracing.use_provider(tracing.make_provider("test", SimpleSpanProcessor(exporter)))
    yield exporter
    tracing.use_provider(None)


@pytest.fixture
def task_type() -> str:
    """A task type no other test uses, so metrics labelled with it are this test's alone."""
    return f"obs_{uuid4().hex[:8]}"


@contextlib.contextmanager
def running_worker(settings: Settings, task_type: str) -> Iterator[None]:
    """A worker whose ``task_type`` handler doubles ``n``, running in a thread."""
    worker = Worker(name="observed")

    @worker.task(task_type)
    def double(task_input: dict[str, Any]) -> dict[str, Any]:
        return {"n": task_input["n"] * 2}

    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(settings,), kwargs={"stop": stop})
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(WAIT_S)


@contextlib.contextmanager
def running_processor(settings: Settings) -> Iterator[Processor]:
    """A processor running in a thread, stopped and joined on the way out."""
    processor = Processor(settings, f"obs-{uuid4().hex[:6]}")
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield processor
    finally:
        stop.set()
        thread.join(WAIT_S)


def register_chain(client: Client, task_type: str, tasks: int = 2) -> str:
    """Register a workflow of ``tasks`` worker tasks in a row; return its name."""
    name = f"chain_{task_type}"
    steps = [
        {
            "name": task_type,
            "taskReferenceName": f"s{i}",
            "inputParameters": {
                "n": "${workflow.input.n}" if i == 0 else f"${{s{i - 1}.output.n}}"
            },
        }
        for i in range(tasks)
    ]
    client.register([parse_definition({"name": name, "version": 1, "tasks": steps})])
    return name


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET; status 0 while nothing listens."""
    try:
        response = httpx.get(url, timeout=10)
    except httpx.TransportError:
        return 0, b""
    return response.status_code, response.content


def by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    """The spans called ``name``."""
    return [span for span in spans if span.name == name]


def test_one_trace_covers_the_request_the_run_and_every_attempt(
    spans: InMemorySpanExporter, processor_thread: Processor, client: Client, task_type: str
) -> None:
    """Client span -> workflow span -> processor attempt spans -> worker spans, in one trace."""
    name = register_chain(client, task_type)
    caller = tracing.tracer().start_span("caller")
    with running_worker(client.settings, task_type):
        with trace.use_span(caller, end_on_exit=True):
            workflow_id = client.start(name, input={"n": 1})
        assert client.wait(workflow_id, timeout=WAIT_S).status == WorkflowStatus.COMPLETED

    def workflow_span() -> ReadableSpan:
        found = by_name(list(spans.get_finished_spans()), f"workflow {name}")
        assert found, "no workflow span yet"
        return found[0]

    run = assert_eventually(workflow_span, timeout=WAIT_S)
    finished = list(spans.get_finished_spans())
    root = caller.get_span_context()
    attempts = by_name(finished, f"task {task_type}")
    executions = by_name(finished, f"execute {task_type}")
    assert len(attempts) == 2
    assert len(executions) == 2
    for span in (run, *attempts, *executions):
        assert span.context is not None
        assert span.context.trace_id == root.trace_id
    assert run.parent is not None
    assert run.parent.span_id == root.span_id
    assert run.attributes is not None
    assert run.attributes["workflow.status"] == "COMPLETED"
    assert run.context is not None
    by_task = {str((s.attributes or {})["task.id"]): s for s in attempts}
    for execution in executions:
        attempt = by_task[str((execution.attributes or {})["task.id"])]
        assert attempt.parent is not None
        assert attempt.context is not None
        assert attempt.parent.span_id == run.context.span_id
        assert execution.parent is not None
        assert execution.context is not None
        assert execution.parent.span_id == attempt.context.span_id
        assert [link.context.span_id for link in attempt.links] == [execution.context.span_id]
    batches = by_name(finished, "processor.batch")
    assert batches
    assert all({"records", "partitions", "events"} <= set(b.attributes or {}) for b in batches)
    assert any((b.attributes or {}).get("events", 0) > 0 for b in batches)


def test_task_commands_and_events_carry_the_trace_context(
    processor_thread: Processor, client: Client, topics: Settings, task_type: str
) -> None:
    """The ExecuteTask on tasks.<type> continues the start request's trace; catch-up restores it."""
    name = register_chain(client, task_type, tasks=1)
    ensure_task_topic(admin_client(topics), topics, task_type)
    caller = SpanContext(0x1234ABCD << 64 | 0x42, 0xFEEDFACE, False, TraceFlags(1))
    with trace.use_span(NonRecordingSpan(caller)):
        workflow_id = client.start(name, input={"n": 1})
    partition = partition_for(workflow_id, topics.partitions)
    command = first_record(topics, Topics(topics.topic_prefix).tasks(task_type), ExecuteTask)
    traceparent = parse_traceparent(header(command.headers()))
    assert traceparent is not None
    assert traceparent.trace_id == caller.trace_id
    assert traceparent.span_id != caller.span_id
    started = first_record(topics, Topics(topics.topic_prefix).events, WorkflowStarted)
    assert header(started.headers(), PARENT_SPAN_ID) == f"{caller.span_id:016x}".encode()
    live = processor_thread.stores[partition].trace(workflow_id)
    assert live is not None
    rebuilt = PartitionStore(topics.state_dir / "rebuilt")
    try:
        catch_up(
            make_consumer(topics, **{"enable.partition.eof": True}),
            Topics(topics.topic_prefix).events,
            partition,
            rebuilt,
        )
        assert rebuilt.trace(workflow_id) == live
    finally:
        rebuilt.close()
    folded = f'orch_catchup_events_total{{partition="{partition}"}}'.encode()
    assert folded in render_prometheus()[0]


def first_record(settings: Settings, topic: str, cls: type) -> Message:
    """The first message on ``topic`` that decodes to a ``cls``."""
    consumer = make_consumer(settings)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    seen: list[Message] = []

    def found() -> Message | None:
        seen.extend(m for m in consumer.consume(100, 0.1) if not m.error())
        return next((m for m in seen if isinstance(CODEC.decode(m.value()), cls)), None)

    try:
        return assert_eventually(found, timeout=WAIT_S, message=f"no {cls.__name__} on {topic}")
    finally:
        consumer.close()


def test_processor_health_port_answers_and_counts_tasks(
    topics: Settings, client: Client, task_type: str
) -> None:
    """/healthz, /readyz and /metrics of a running processor; the metrics count the run's tasks."""
    settings = topics.model_copy(update={"metrics_port": free_port()})
    base = f"http://127.0.0.1:{settings.metrics_port}"
    name = register_chain(client, task_type)
    with running_processor(settings) as processor:
        assert_eventually(lambda: get(f"{base}/healthz")[0] == 200, timeout=WAIT_S)
        assert_eventually(lambda: get(f"{base}/readyz")[0] == 200, timeout=WAIT_S)
        assert json.loads(get(f"{base}/readyz")[1]) == {"ready": True, "reasons": []}
        with running_worker(settings.model_copy(update={"metrics_port": 0}), task_type):
            workflow_id = client.start(name, input={"n": 2})
            assert client.wait(workflow_id, timeout=WAIT_S).status == WorkflowStatus.COMPLETED
        assert processor.readiness() == []

        def counted() -> bytes:
            status, body = get(f"{base}/metrics")
            assert status == 200
            assert f'orch_tasks_completed_total{{task_type="{task_type}"}} 2.0'.encode() in body
            return body

        body = assert_eventually(counted, timeout=WAIT_S)
        assert_eventually(
            lambda: b"orch_processor_lag{" in get(f"{base}/metrics")[1],
            timeout=WAIT_S,
            message="no lag reported",
        )
    for name_part in (
        f'orch_tasks_scheduled_total{{task_type="{task_type}"}} 2.0',
        f'orch_task_latency_seconds_count{{task_type="{task_type}"}} 2.0',
        f'orch_worker_tasks_total{{outcome="completed",task_type="{task_type}"}} 2.0',
        "orch_processor_commit_duration_seconds_bucket",
        "orch_processor_partitions_caught_up",
    ):
        assert name_part.encode() in body


def test_readiness_waits_for_an_assignment(topics: Settings) -> None:
    """Before it has partitions, a processor's /readyz is 503 and says what it waits for."""
    settings = topics.model_copy(update={"metrics_port": free_port()})
    processor = Processor(settings, "not-started")
    server = serve_health(settings, processor.readiness)
    assert server is not None
    try:
        status, body = get(f"http://127.0.0.1:{server.port}/readyz")
    finally:
        server.close()
    assert status == 503
    assert json.loads(body)["reasons"] == ["waiting for a partition assignment"]


def test_worker_health_port_is_ready_once_subscribed(topics: Settings, task_type: str) -> None:
    """A worker with a metrics port answers /readyz 200 once its consumers have subscribed."""
    settings = topics.model_copy(update={"metrics_port": free_port()})
    base = f"http://127.0.0.1:{settings.metrics_port}"
    with running_worker(settings, task_type):
        assert_eventually(lambda: get(f"{base}/readyz")[0] == 200, timeout=WAIT_S)
        assert get(f"{base}/healthz")[0] == 200
