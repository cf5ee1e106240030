"""The metrics the processor and the workers record, created once per process.

| OpenTelemetry name | Prometheus name | attributes |
|---|---|---|
| ``orch.tasks.scheduled`` | ``orch_tasks_scheduled_total`` | task_type |
| ``orch.tasks.completed`` | ``orch_tasks_completed_total`` | task_type |
| ``orch.tasks.failed`` | ``orch_tasks_failed_total`` | task_type, cause (failed, timed_out) |
| ``orch.tasks.retried`` | ``orch_tasks_retried_total`` | task_type |
| ``orch.task.latency`` | ``orch_task_latency_seconds`` | task_type (scheduled to completed) |
| ``orch.workflows.started`` | ``orch_workflows_started_total`` | |
| ``orch.workflows.ended`` | ``orch_workflows_ended_total`` | status |
| ``orch.processor.commit.duration`` | ``orch_processor_commit_duration_seconds`` | |
| ``orch.processor.lag`` | ``orch_processor_lag`` | topic, partition |
| ``orch.processor.partitions.owned`` | ``orch_processor_partitions_owned`` | instance |
| ``orch.processor.partitions.caught_up`` | ``orch_processor_partitions_caught_up`` | instance |
| ``orch.catchup.events`` | ``orch_catchup_events_total`` | partition |
| ``orch.worker.tasks`` | ``orch_worker_tasks_total`` | task_type, outcome |
| ``orch.worker.handler.duration`` | ``orch_worker_handler_duration_seconds`` | task_type, outcome |
"""

from __future__ import annotations

import collections
import functools
import threading
from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, _Gauge

from orchestrator.observability.metrics import meter

__all__ = ["ProcessorInstruments", "WorkerInstruments", "processor", "worker"]

#: Seconds: from a millisecond engine hop to an hour-long human task.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip


@dataclass(frozen=True)
class ProcessorInstruments:
    """What the processor records: task and workflow outcomes, commits, lag, catch-up."""

    tasks_scheduled: Counter
    tasks_completed: Counter
    tasks_failed: Counter
    tasks_retried: Counter
    task_latency: Histogram
    workflows_started: Counter
    workflows_ended: Counter
    commit_duration: Histogram
    lag: _Gauge
    partitions_owned: _Gauge
    partitions_caught_up: _Gauge
    catchup_events: Counter


class WorkerInstruments:
    """What a worker records: tasks executed by type and outcome, and handler durations.

    Handler threads only queue their measurements (:meth:`measure`, a deque append); a consumer
    thread records them in bulk (:meth:`flush`). Recording from dozens of handler threads at
    once would make them contend for the SDK's locks, which costs more than the handler of a
    small task.
    """

    def __init__(self, tasks: Counter, handler_duration: Histogram) -> None:
        self._tasks = tasks
        self._duration = handler_duration
        self._pending: collections.deque[tuple[str, str, float]] = collections.deque()
        self._labels: dict[tuple[str, str], dict[str, str]] = {}
        self._flushing = threading.Lock()

    def measure(self, task_type: str, outcome: str, seconds: float) -> None:
        """Queue one handler call's outcome and duration; any thread."""
        self._pending.append((task_type, outcome, seconds))

    def flush(self) -> None:
        """Record everything queued so far; cheap when nothing is."""
        if not self._pending or not self._flushing.acquire(blocking=False):
            return
        try:
            counts: collections.Counter[tuple[str, str]] = collections.Counter()
            while self._pending:
                task_type, outcome, seconds = self._pending.popleft()
                key = (task_type, outcome)
                labels = self._labels.get(key) or self._labels.setdefault(
                    key, {"task_type": task_type, "outcome": outcome}
                )
                self._duration.record(seconds, labels)
                counts[key] += 1
            for key, count in counts.items():
                self._tasks.add(count, self._labels[key])
        finally:
            self._flushing.release()


@functools.cache
def processor() -> ProcessorInstruments:
    """The processor's instruments (shared by every processor instance of the process)."""
    m = meter()
    return ProcessorInstruments(
        tasks_scheduled=m.create_counter("orch.tasks.scheduled", description="tasks scheduled"),
        tasks_completed=m.create_counter("orch.tasks.completed", description="tasks completed"),
        tasks_failed=m.create_counter(
            "orch.tasks.failed", description="task attempts failed or timed out"
        ),
        tasks_retried=m.create_counter(
            "orch.tasks.retried", description="task attempts scheduled after a failed one"
        ),
        task_latency=_seconds("orch.task.latency", "from TaskScheduled to TaskCompleted"),
        workflows_started=m.create_counter("orch.workflows.started", description="runs begun"),
        workflows_ended=m.create_counter("orch.workflows.ended", description="runs ended"),
        commit_duration=_seconds(
            "orch.processor.commit.duration", "one batch's Kafka transaction, begin to commit"
        ),
        lag=m.create_gauge(
            "orch.processor.lag",
            unit="{record}",
            description="records behind the end of an input partition (best effort)",
        ),
        partitions_owned=m.create_gauge(
            "orch.processor.partitions.owned", description="partitions assigned"
        ),
        partitions_caught_up=m.create_gauge(
            "orch.processor.partitions.caught_up",
            description="assigned partitions whose events are folded to the end",
        ),
        catchup_events=m.create_counter(
            "orch.catchup.events", description="events folded by catch-up and rebuild"
        ),
    )


@functools.cache
def worker() -> WorkerInstruments:
    """The workers' instruments (shared by every worker of the process)."""
    return WorkerInstruments(
        meter().create_counter("orch.worker.tasks", description="task attempts executed"),
        _seconds("orch.worker.handler.duration", "one handler call"),
    )


def _seconds(name: str, description: str) -> Histogram:
    return meter().create_histogram(
        name,
        unit="s",
        description=description,
        explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
    )
