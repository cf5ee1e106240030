"""Execution metrics folded from events: per workflow name and task type, and per minute.

Success rates, retry counts and latency distributions (p50/p95/p99 from fixed log-spaced
buckets) are what the UI's metrics page charts. They are part of the read model, folded once
per event and stored in the same write batch as the offsets, so they survive restarts and
rebuild exactly.
"""

from __future__ import annotations

import bisect
from typing import Any

from orchestrator.engine.records import (
    AnyEvent,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TaskTimedOut,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowTerminated,
)
from orchestrator.engine.state import WorkflowState

Json = Any
# Upper bounds in milliseconds; the last bucket is open.
BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000,
              300_000, 3_600_000)  # fmt: skip
MINUTE_MS = 60_000
KEEP_MINUTES = 180


def _stats(kind: str) -> dict[str, Json]:
    counters = ("started", "completed", "failed", "terminated") if kind == "workflow" else (
        "scheduled", "completed", "failed", "timedOut", "retries")  # fmt: skip
    return {**dict.fromkeys(counters, 0), "histogram": [0] * (len(BUCKETS_MS) + 1)}


def _observe(stats: dict[str, Json], latency_ms: int) -> None:
    stats["histogram"][bisect.bisect_left(BUCKETS_MS, max(latency_ms, 0))] += 1


def percentile(histogram: list[int], fraction: float) -> int | None:
    """The ``fraction`` quantile, interpolated linearly inside its bucket (None if empty)."""
    total = sum(histogram)
    if total == 0:
        return None
    rank, seen = fraction * total, 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            if index == len(BUCKETS_MS):
                return BUCKETS_MS[-1]  # the open bucket: its lower bound is all we know
            lower = BUCKETS_MS[index - 1] if index else 0
            return round(lower + (BUCKETS_MS[index] - lower) * (rank - seen) / count)
        seen += count
    return BUCKETS_MS[-1]


class Metrics:
    """Aggregates kept as plain JSON so they are stored with the read model's rows."""

    def __init__(self, data: dict[str, Json] | None = None) -> None:
        self.data: dict[str, Json] = data or {"workflows": {}, "tasks": {}, "minutes": {}}

    def apply(self, before: WorkflowState | None, event: AnyEvent) -> None:
        """Count ``event``; ``before`` is the workflow's state before it."""
        match event:
            case WorkflowStarted():
                self._workflow(event.name)["started"] += 1
            case WorkflowCompleted() if before is not None:
                stats = self._workflow(before.name)
                stats["completed"] += 1
                _observe(stats, event.at - before.created_at)
                self._minute(event.at)["workflowsCompleted"] += 1
            case WorkflowFailed() if before is not None:
                self._workflow(before.name)["failed"] += 1
            case WorkflowTerminated() if before is not None:
                self._workflow(before.name)["terminated"] += 1
            case TaskScheduled():
                stats = self._task(event.task_type)
                stats["scheduled"] += 1
                stats["retries"] += 1 if event.attempt > 1 else 0
            case TaskCompleted() if before is not None and event.task_id in before.tasks:
                task = before.tasks[event.task_id]
                stats = self._task(task.task_type)
                stats["completed"] += 1
                _observe(stats, event.at - task.scheduled_at)
                self._minute(event.at)["tasksCompleted"] += 1
            case TaskFailed() if before is not None and event.task_id in before.tasks:
                self._task(before.tasks[event.task_id].task_type)["failed"] += 1
            case TaskTimedOut() if before is not None and event.task_id in before.tasks:
                self._task(before.tasks[event.task_id].task_type)["timedOut"] += 1
            case _:
                pass

    def _workflow(self, name: str) -> dict[str, Json]:
        return self.data["workflows"].setdefault(name, _stats("workflow"))  # type: ignore[no-any-return]

    def _task(self, task_type: str) -> dict[str, Json]:
        return self.data["tasks"].setdefault(task_type, _stats("task"))  # type: ignore[no-any-return]

    def _minute(self, at: int) -> dict[str, int]:
        minutes: dict[str, dict[str, int]] = self.data["minutes"]
        key = str(at - at % MINUTE_MS)
        if key not in minutes:
            minutes[key] = {"tasksCompleted": 0, "workflowsCompleted": 0}
            for old in sorted(minutes, key=int)[:-KEEP_MINUTES]:
                del minutes[old]
        return minutes[key]

    def summary(self, names: set[str] | None = None) -> dict[str, Json]:
        """The API's view; ``names`` limits workflows to those a caller may see."""
        workflows = [
            _workflow_view(name, stats)
            for name, stats in sorted(self.data["workflows"].items())
            if names is None or name in names
        ]
        tasks = [_task_view(name, stats) for name, stats in sorted(self.data["tasks"].items())]
        throughput = [
            {"minute": int(minute), **counts}
            for minute, counts in sorted(self.data["minutes"].items(), key=lambda kv: int(kv[0]))
        ]
        return {"workflows": workflows, "tasks": tasks, "throughput": throughput}


def _latency(histogram: list[int]) -> dict[str, int | None]:
    return {f"p{int(q * 100)}": percentile(histogram, q) for q in (0.5, 0.95, 0.99)}


def _rate(good: int, bad: int) -> float | None:
    return None if good + bad == 0 else round(good / (good + bad), 4)


def _workflow_view(name: str, stats: dict[str, Json]) -> dict[str, Json]:
    ended = stats["completed"] + stats["failed"] + stats["terminated"]
    return {
        "name": name,
        "started": stats["started"],
        "completed": stats["completed"],
        "failed": stats["failed"],
        "terminated": stats["terminated"],
        "running": max(stats["started"] - ended, 0),
        "successRate": _rate(stats["completed"], stats["failed"]),
        "latencyMs": _latency(stats["histogram"]),
    }


def _task_view(task_type: str, stats: dict[str, Json]) -> dict[str, Json]:
    return {
        "taskType": task_type,
        "scheduled": stats["scheduled"],
        "completed": stats["completed"],
        "failed": stats["failed"],
        "timedOut": stats["timedOut"],
        "retries": stats["retries"],
        "successRate": _rate(stats["completed"], stats["failed"] + stats["timedOut"]),
        "latencyMs": _latency(stats["histogram"]),
    }
