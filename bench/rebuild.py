"""Rebuild speed: events per second folded from the events topic into fresh RocksDB stores.

Writes a synthetic log of five-task workflows (the same events the processor writes) straight
to ``events``, then times ``orchestrator rebuild``'s code path over all partitions.
``--events 1000000`` runs in about a minute with the producer's memory bounded.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from common import bench_settings

from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import (
    Event,
    TaskCompleted,
    TaskScheduled,
    WorkflowCompleted,
    WorkflowStarted,
)
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_producer
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics
from orchestrator.processor.rebuild import rebuild

TASKS = 5
TARGET = 20_000
FLUSH_TIMEOUT_S = 300.0
DEFINITION = parse_definition(
    {
        "name": "bench",
        "tasks": [{"name": "step", "taskReferenceName": f"s{i}"} for i in range(TASKS)],
    }
).to_json()


def workflow_events(workflow_id: str, at: int) -> list[Event]:
    """The events of one completed five-task run."""
    events: list[Event] = [
        WorkflowStarted(
            workflow_id=workflow_id,
            seq=1,
            at=at,
            name="bench",
            version=1,
            input={"n": 1},
            definition=DEFINITION,
        )
    ]
    for i in range(TASKS):
        seq = len(events)
        events.append(
            TaskScheduled(
                workflow_id=workflow_id,
                seq=seq + 1,
                at=at,
                task_id=f"s{i}",
                ref_name=f"s{i}",
                task_type="step",
                attempt=1,
                input={"n": i},
            )
        )
        events.append(
            TaskCompleted(
                workflow_id=workflow_id,
                seq=seq + 2,
                at=at,
                task_id=f"s{i}",
                attempt=1,
                output={"n": i + 1},
            )
        )
    events.append(
        WorkflowCompleted(workflow_id=workflow_id, seq=len(events) + 1, at=at, output={"n": TASKS})
    )
    return events


def write_log(settings: Settings, events: int) -> int:
    """Produce ``events`` synthetic events (whole workflows, the last one cut short); return it.

    The producer's queue is bounded, so memory stays flat however many events are asked for: a
    full queue waits for acknowledgements instead of buffering more. Every record must be
    acknowledged, or the run stops with the count that was not.
    """
    topic = Topics(settings.topic_prefix).events
    producer = make_producer(
        settings,
        None,
        **{"linger.ms": 20, "queue.buffering.max.messages": 100_000},
    )
    failed: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failed.append(str(error))

    written = 0
    for n in itertools.count():
        workflow_id = f"wf-{n}"
        partition = partition_for(workflow_id, settings.partitions)
        for event in workflow_events(workflow_id, 1_700_000_000_000 + n):
            if written == events:
                break
            value = CODEC.encode(event)
            while True:
                try:
                    producer.produce(
                        topic,
                        key=workflow_id.encode(),
                        value=value,
                        partition=partition,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            written += 1
        producer.poll(0)
        if written == events:
            break
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while (pending := producer.flush(1.0)) > 0 and time.monotonic() < deadline:
        pass
    if pending or failed:
        raise SystemExit(
            f"{pending} events unacknowledged and {len(failed)} failed "
            f"({failed[0] if failed else 'timeout'})"
        )
    return written


def main() -> None:
    """Write the synthetic log, rebuild, print events/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=240_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, bench_settings(state_dir=Path(tmp)) as settings:
        began = time.monotonic()
        written = write_log(settings, args.events)
        elapsed = time.monotonic() - began
        print(
            f"wrote {written} events in {elapsed:.2f} s ({written / elapsed:,.0f} events/s, "
            f"peak memory so far {peak_rss_mb():.0f} MB)"
        )
        began = time.monotonic()
        results = rebuild(settings)
        elapsed = time.monotonic() - began
        replayed = sum(result.events for result in results)
        assert replayed == written, f"replayed {replayed} of {written} events"
        print(f"rebuild: {replayed} events into {len(results)} partition stores in {elapsed:.2f} s")
        print(f"rebuild speed: {replayed / elapsed:,.0f} events/s (target >= {TARGET:,}/s)")
        print(f"peak memory after the rebuild: {peak_rss_mb():.0f} MB")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
