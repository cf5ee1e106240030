"""Trace context headers, run trace rows, preset span ids, trace ids in logs, the health port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from orchestrator.config import Settings
from orchestrator.engine.records import (
    ExecuteTask,
    ResultStatus,
    TaskResult,
    WorkflowStarted,
    WorkflowStatus,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.observability import instruments, tracing
from orchestrator.observability.health import HealthServer
from orchestrator.observability.metrics import render_prometheus
from orchestrator.observability.outcomes import is_run_start
from orchestrator.observability.propagation import (
    current_or_new,
    format_traceparent,
    header,
    parse_traceparent,
)
from orchestrator.observability.runs import RunTrace
from orchestrator.observability.worker import TaskAttempt
from orchestrator.processor.store import PartitionStore
from orchestrator.telemetry import configure_logging, get_logger

CONTEXT = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1))
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans of this process recorded in memory for the test, and tracing off afterwards."""
    exporter = InMemorySpanExporter()
    tracing.use_provider(tracing.make_provider("test", SimpleSpanProcessor(exporter)))
    yield exporter
    tracing.use_provider(None)


def test_traceparent_round_trips() -> None:
    """A span context formats as the W3C traceparent and parses back as a remote context."""
    assert format_traceparent(CONTEXT) == TRACEPARENT
    parsed = parse_traceparent(TRACEPARENT.encode())
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.trace_flags.sampled) == (
        CONTEXT.trace_id,
        CONTEXT.span_id,
        True,
    )
    assert parsed.is_remote


@pytest.mark.parametrize(
    "value",
    [None, "", "garbage", TRACEPARENT[:-1], TRACEPARENT.replace("-", "_"), "00-" + "0" * 32 + "-"
     + "1" * 16 + "-01", TRACEPARENT.replace("b7ad", "zzzz")],
)  # fmt: skip
def test_malformed_traceparent_counts_as_absent(value: str | None) -> None:
    """A missing, short, zero or non-hex traceparent parses to None, never raises."""
    assert parse_traceparent(value) is None


def test_header_reads_lists_and_mappings() -> None:
    """Headers come as (name, value) pairs from consumers and as dicts from some producers."""
    assert header([("type", b"X"), ("traceparent", b"tp")]) == b"tp"
    assert header({"traceparent": "tp"}) == "tp"
    assert header(None) is None


def test_current_or_new_prefers_the_active_span() -> None:
    """Under an active span the client continues it; without one it starts a sampled trace."""
    with trace.use_span(NonRecordingSpan(CONTEXT)):
        assert current_or_new() == CONTEXT
    fresh = current_or_new()
    assert fresh.is_valid
    assert fresh.trace_flags.sampled
    assert fresh.trace_id != CONTEXT.trace_id


def test_run_trace_continues_the_request_and_round_trips() -> None:
    """A run joins its request's trace as a new child span; its row and headers restore it."""
    run = RunTrace.begin(CONTEXT, at=1234)
    assert run.trace_id == CONTEXT.trace_id
    assert run.parent_id == CONTEXT.span_id
    assert run.span_id != CONTEXT.span_id
    assert RunTrace.from_bytes("wf", run.to_bytes()) == run
    assert RunTrace.from_headers(run.header, run.parent_header, 1234) == run


def test_task_attempt_ids_are_derived_and_distinct() -> None:
    """An attempt's span id is the same for the same run, task and attempt, else different."""
    run = RunTrace.begin(None, at=0)
    first = run.task_context("t1", 1)
    assert first == run.task_context("t1", 1)
    assert first.span_id != run.task_context("t1", 2).span_id
    assert first.trace_id == run.trace_id
    assert RunTrace.fallback("wf-1") == RunTrace.fallback("wf-1")


def test_emitted_span_keeps_its_preset_ids(spans: InMemorySpanExporter) -> None:
    """A span reported after the fact gets the ids handed out before, under the given parent."""
    run = RunTrace.begin(CONTEXT, at=1000)
    tracing.emit_span("workflow w", run.context, run.parent, 1000, 1500, attributes={"a": 1})
    (span,) = spans.get_finished_spans()
    assert span.context is not None
    assert (span.context.trace_id, span.context.span_id) == (run.trace_id, run.span_id)
    assert span.parent is not None
    assert span.parent.span_id == CONTEXT.span_id
    assert (span.start_time, span.end_time) == (1000 * 1_000_000, 1500 * 1_000_000)


def test_no_provider_records_nothing() -> None:
    """Without a configured provider, emitting is a no-op and tracing reports not recording."""
    assert not tracing.recording()
    tracing.emit_span("x", CONTEXT, None, 0, 1)


def test_json_log_lines_carry_trace_and_span_ids(capsys: pytest.CaptureFixture[str]) -> None:
    """A line logged under a span names its trace and span ids; one outside names neither."""
    configure_logging("json", "INFO")
    try:
        with trace.use_span(NonRecordingSpan(CONTEXT)):
            get_logger("orchestrator.test").info("inside")
        get_logger("orchestrator.test").info("outside")
    finally:
        structlog.reset_defaults()
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["span_id"] == "b7ad6b7169203331"
    assert "trace_id" not in outside


def test_store_keeps_trace_rows_with_the_states(tmp_path: Path) -> None:
    """Trace rows are written in the states' write batch and read back after a reopen."""
    run = RunTrace.begin(CONTEXT, at=5)
    state = WorkflowState(workflow_id="wf", name="n", version=1, status=WorkflowStatus.RUNNING)
    store = PartitionStore(tmp_path / "p0")
    store.write({"wf": state}, 7, {"wf": run.to_bytes()})
    store.close()
    reopened = PartitionStore(tmp_path / "p0")
    try:
        raw = reopened.trace("wf")
        assert raw is not None
        assert RunTrace.from_bytes("wf", raw) == run
        assert reopened.trace("other") is None
    finally:
        reopened.close()


def test_metrics_render_in_prometheus_text() -> None:
    """The registry renders as Prometheus text with the orchestrator's instruments in it."""
    instruments.processor().tasks_scheduled.add(1, {"task_type": "unit_render"})
    body, content_type = render_prometheus()
    assert content_type.startswith("text/plain")
    assert b'orch_tasks_scheduled_total{task_type="unit_render"} 1.0' in body


def test_health_port_reports_an_unreachable_broker() -> None:
    """/healthz is 200 while /readyz is 503 naming the broker and the process's own reasons."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = Settings(
        bootstrap=f"127.0.0.1:{closed_port}", connect_timeout_s=1, metrics_port=_free_port()
    )
    server = HealthServer(settings, lambda: ["catching up partitions [0]"]).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        response = httpx.get(f"{base}/readyz", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert any("cannot reach Kafka" in reason for reason in body["reasons"])
        assert "catching up partitions [0]" in body["reasons"]
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_started_event_is_a_run_start() -> None:
    """WorkflowStarted begins a run, so catch-up restores its trace row from its headers."""
    assert is_run_start(WorkflowStarted(workflow_id="w", seq=1, at=0, name="n", version=1))


TASK = ExecuteTask(
    workflow_id="wf", task_id="t1", attempt=2, task_type="unit_attempt", ref_name="r"
)
RESULT = TaskResult(workflow_id="wf", task_id="t1", attempt=2, status=ResultStatus.FAILED)


def test_task_attempt_without_tracing_passes_the_context_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not recording: no span is made, the result continues the command's, and logs name it."""
    configure_logging("json", "INFO")
    try:
        with TaskAttempt(TASK, TRACEPARENT.encode()) as attempt:
            assert trace.get_current_span() is trace.INVALID_SPAN
            get_logger("orchestrator.test").info("handling")
            attempt.finish(RESULT)
        get_logger("orchestrator.test").info("after")
    finally:
        structlog.reset_defaults()
    assert attempt.traceparent == TRACEPARENT
    inside, after = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (inside["trace_id"], inside["span_id"]) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )
    assert "trace_id" not in after
    instruments.worker().flush()
    body, _ = render_prometheus()
    assert b'orch_worker_tasks_total{outcome="failed",task_type="unit_attempt"}' in body


def test_task_attempt_span_is_a_child_of_the_command(spans: InMemorySpanExporter) -> None:
    """Recording: the handler runs in an ``execute`` span under the command's; results name it."""
    with TaskAttempt(TASK, TRACEPARENT) as attempt:
        current = trace.get_current_span().get_span_context()
        attempt.finish(RESULT)
    (span,) = spans.get_finished_spans()
    assert span.name == "execute unit_attempt"
    assert span.parent is not None
    assert span.parent.span_id == CONTEXT.span_id
    assert span.context is not None
    assert current.span_id == span.context.span_id
    assert attempt.traceparent == format_traceparent(span.context)
    assert not span.status.is_ok


def test_task_attempt_ignores_a_malformed_traceparent() -> None:
    """A command without a usable traceparent runs without one; its result carries none."""
    with TaskAttempt(TASK, b"not a traceparent") as attempt:
        attempt.finish(RESULT)
    assert attempt.traceparent is None
