"""Read-model metrics: counts and latency quantiles folded from events."""

from __future__ import annotations

from orchestrator.api.readmetrics import BUCKETS_MS, Metrics, percentile
from orchestrator.engine.evolve import evolve
from orchestrator.engine.records import (
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    WorkflowCompleted,
    WorkflowStarted,
)


def test_percentile_interpolates_inside_a_bucket() -> None:
    """Quantiles fall between a bucket's bounds, not on its upper bound."""
    histogram = [0] * (len(BUCKETS_MS) + 1)
    histogram[BUCKETS_MS.index(5000)] = 10  # ten observations in (2000, 5000]
    assert 2000 < percentile(histogram, 0.5) < 5000  # type: ignore[operator]
    assert percentile(histogram, 0.99) <= 5000  # type: ignore[operator]
    assert percentile([0] * len(histogram), 0.5) is None


def test_counts_latency_and_retries() -> None:
    """A run with a failed and a retried attempt counts one retry, one failure, one success."""
    metrics = Metrics()
    events = [
        WorkflowStarted(workflow_id="w", seq=1, at=0, name="flow", version=1, definition={}),
        TaskScheduled(
            workflow_id="w", seq=2, at=0, task_id="t", ref_name="t", task_type="a", attempt=1
        ),
        TaskFailed(
            workflow_id="w", seq=3, at=10, task_id="t", attempt=1, reason="x", retrying=True
        ),
        TaskScheduled(
            workflow_id="w", seq=4, at=20, task_id="t", ref_name="t", task_type="a", attempt=2
        ),
        TaskCompleted(workflow_id="w", seq=5, at=45, task_id="t", attempt=2),
        WorkflowCompleted(workflow_id="w", seq=6, at=50),
    ]
    state = None
    for event in events:
        metrics.apply(state, event)
        state = evolve(state, event)
    summary = metrics.summary()
    task = summary["tasks"][0]
    assert (task["completed"], task["failed"], task["retries"]) == (1, 1, 1)
    assert 20 <= task["latencyMs"]["p50"] <= 50
    flow = summary["workflows"][0]
    assert (flow["started"], flow["completed"], flow["running"]) == (1, 1, 0)
    assert sum(m["tasksCompleted"] for m in summary["throughput"]) == 1
