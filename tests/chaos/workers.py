"""The chaos suite's workers: every outcome follows from the task input and the attempt number.

Two :class:`Worker` instances, so they run as separate processes and die separately:

- ``worker`` (sync handlers, the thread pool): ``chaos_step`` adds, ``chaos_flaky`` fails its
  first ``fail_times`` attempts (or raises :class:`TerminalError`), ``chaos_garbage`` returns an
  output that is not JSON on attempt 1, then publishes junk results before answering properly.
- ``waiting`` (async handlers, many slots): ``chaos_slow`` answers attempt 1 only after
  ``sleep`` seconds, far past its response timeout; ``chaos_hang`` never answers attempt 1 (or
  no attempt, with ``always``).

Run with ``python -m orchestrator.cli worker tests.chaos.workers`` (or ``...:waiting``) from the
repository root.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from confluent_kafka import Producer

from orchestrator.config import Settings
from orchestrator.engine.records import ResultStatus, TaskResult
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_producer
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics
from orchestrator.worker import TaskContext, TerminalError, Worker

#: How long a "hanging" attempt waits: past the end of any run, so it never answers.
HANG_S = 900.0
#: Junk records chaos_garbage publishes to ``results`` next to its real answer.
JUNK_BYTES = b"\x00chaos: this is not an Avro record"

worker = Worker(name="chaos")
waiting = Worker(name="chaos-waiting")

_junk_lock = threading.Lock()
_junk_producer: Producer | None = None


@worker.task("chaos_step")
def chaos_step(task_input: dict[str, Any]) -> dict[str, Any]:
    """``v + add``."""
    time.sleep(0.002)
    return {"v": task_input["v"] + task_input.get("add", 0)}


@worker.task("chaos_flaky")
def chaos_flaky(task_input: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fail attempts 1..``fail_times`` (all of them for good with ``terminal``), then add one."""
    if task_input.get("terminal"):
        raise TerminalError(f"planned terminal failure of attempt {ctx.attempt}")
    if ctx.attempt <= task_input["fail_times"]:
        raise RuntimeError(f"planned failure of attempt {ctx.attempt}")
    return {"v": task_input["v"] + 1, "attempt": ctx.attempt}


@worker.task("chaos_garbage")
def chaos_garbage(task_input: dict[str, Any], ctx: TaskContext) -> Any:
    """Attempt 1 returns a set (not JSON): the runtime fails it. Later attempts send junk first.

    The junk: a COMPLETED result for the failed attempt 1 and one for a task that does not
    exist (both must be ignored), and bytes that are no record at all (a dead letter).
    """
    if ctx.attempt == 1:
        return {"v": {task_input["v"]}}
    _publish_junk(ctx)
    return {"v": task_input["v"] + 1, "garbage": False}


@waiting.task("chaos_slow")
async def chaos_slow(task_input: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Attempt 1 answers after ``sleep`` seconds, with a mark the workflow must never show."""
    if ctx.attempt == 1:
        await asyncio.sleep(task_input["sleep"])
        return {"v": -1, "late": True}
    return {"v": task_input["v"] + 1, "late": False}


@waiting.task("chaos_hang")
async def chaos_hang(task_input: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Never answer attempt 1 (``hang_first``) or any attempt (``always``); otherwise add one."""
    if task_input.get("always") or (task_input.get("hang_first") and ctx.attempt == 1):
        await asyncio.sleep(HANG_S)
    return {"v": task_input["v"] + 1}


def _publish_junk(ctx: TaskContext) -> None:
    settings = Settings()  # this worker process's ORCH_* environment
    topic = Topics.from_settings(settings).results
    home = partition_for(ctx.workflow_id, settings.partitions)
    stale = TaskResult(
        workflow_id=ctx.workflow_id,
        task_id=ctx.task_id,
        attempt=ctx.attempt - 1,
        status=ResultStatus.COMPLETED,
        output={"v": -1, "garbage": True},
        worker_id="chaos-junk",
    )
    unknown = TaskResult(
        workflow_id=ctx.workflow_id,
        task_id=f"{ctx.task_id}-no-such-task",
        attempt=1,
        status=ResultStatus.COMPLETED,
        output={"v": -1, "garbage": True},
        worker_id="chaos-junk",
    )
    producer = _producer(settings)
    key = ctx.workflow_id.encode()
    for record in (stale, unknown):
        headers = {"type": CODEC.type_name(record)}
        producer.produce(topic, CODEC.encode(record), key, home, headers=headers)
    producer.produce(topic, JUNK_BYTES, key, home, headers={"type": "TaskResult"})
    producer.flush(10)


def _producer(settings: Settings) -> Producer:
    global _junk_producer  # noqa: PLW0603 - one producer per worker process, made on first use
    with _junk_lock:
        if _junk_producer is None:
            _junk_producer = make_producer(settings, None, **{"linger.ms": 0})
        return _junk_producer
