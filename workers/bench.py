"""A no-op worker for the benchmarks: measures the engine, not the handler."""

from __future__ import annotations

from typing import Any

from orchestrator.worker import Worker

worker = Worker(name="bench")


@worker.task("bench_step")
def bench_step(task_input: dict[str, Any]) -> dict[str, Any]:
    """Return the input counter plus one."""
    return {"n": int(task_input.get("n", 0)) + 1}
