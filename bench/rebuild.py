"""Rebuild speed: events per second folded from the events topic into fresh RocksDB stores.

Writes a synthetic log of five-task workflows (the same events the processor writes) straight
to ``events``, then times ``orchestrator rebuild``'s code path over all partitions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import bench_settings

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


def main() -> None:
    """Write the synthetic log, rebuild, print events/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=240_000)
    args = parser.parse_args()
    per_workflow = 2 + 2 * TASKS
    with tempfile.TemporaryDirectory() as tmp, bench_settings(state_dir=Path(tmp)) as settings:
        topic = Topics(settings.topic_prefix).events
        producer = make_producer(
            settings, **{"linger.ms": 20, "queue.buffering.max.messages": 500000}
        )
        written = 0
        for n in range(args.events // per_workflow):
            workflow_id = f"wf-{n}"
            partition = partition_for(workflow_id, settings.partitions)
            for event in workflow_events(workflow_id, 1_700_000_000_000 + n):
                producer.produce(
                    topic, key=workflow_id.encode(), value=CODEC.encode(event), partition=partition
                )
                written += 1
            producer.poll(0)
        producer.flush(120)
        began = time.monotonic()
        results = rebuild(settings)
        elapsed = time.monotonic() - began
        replayed = sum(result.events for result in results)
        assert replayed == written, f"replayed {replayed} of {written} events"
        print(f"rebuild: {replayed} events into {len(results)} partition stores in {elapsed:.2f} s")
        print(f"rebuild speed: {replayed / elapsed:,.0f} events/s")


if __name__ == "__main__":
    main()
