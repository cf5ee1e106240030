"""End-to-end throughput: N workflows of K worker tasks, one processor and one worker process.

Prints workflows/s, tasks/s and per-task latency (TaskScheduled to TaskCompleted, both stamped
by the processor, so one clock): the full hop processor -> tasks topic -> worker -> results
topic -> processor, including both Kafka transactions' worth of commits.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import bench_settings, percentile

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import TERMINAL_EVENTS, TaskCompleted, TaskScheduled
from orchestrator.log.reader import read_events
from orchestrator.stack import LocalStack


def chain(tasks: int) -> dict[str, object]:
    """A workflow of ``tasks`` bench_step tasks, each fed the previous output."""
    steps = [
        {
            "name": "bench_step",
            "taskReferenceName": f"s{i}",
            "inputParameters": {
                "n": "${workflow.input.n}" if i == 0 else f"${{s{i - 1}.output.n}}"
            },
        }
        for i in range(tasks)
    ]
    return {"name": "bench_chain", "version": tasks, "tasks": steps}


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="workflow starts/s in the latency phase (below saturation)",
    )
    parser.add_argument("--latency-workflows", type=int, default=300)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_settings(state_dir=Path(tmp)) as settings,
        LocalStack(settings, embedded_broker=False) as stack,
    ):
        stack.spawn(
            "processor", "processor", "--instance-id", "bench", log_path=Path(tmp) / "p.log"
        )
        stack.spawn(
            "worker",
            "worker",
            "workers.bench",
            "--concurrency",
            str(args.concurrency),
            log_path=Path(tmp) / "w.log",
        )
        client = Client(settings)
        client.register([parse_definition(chain(args.tasks))])
        warm = client.start("bench_chain", version=args.tasks, input={"n": 0})
        client.wait(warm, timeout=120)  # both group joins done, topics created
        print(f"throughput phase: {args.workflows} workflows started at once")
        began = time.monotonic()
        ids = [
            client.start("bench_chain", version=args.tasks, input={"n": i})
            for i in range(args.workflows)
        ]
        report(settings, set(ids), began, args.tasks)
        print(f"latency phase: {args.latency_workflows} workflows at {args.rate:g} starts/s")
        began = time.monotonic()
        ids = []
        for i in range(args.latency_workflows):
            time.sleep(max(0.0, began + i / args.rate - time.monotonic()))
            ids.append(client.start("bench_chain", version=args.tasks, input={"n": i}))
        report(settings, set(ids), began, args.tasks)


def report(settings: Settings, ids: set[str], began: float, tasks: int) -> None:
    """Follow the log until every workflow ended, then print throughput and latency."""
    pending, scheduled, latencies = set(ids), {}, []
    events = read_events(settings, follow=True, timeout=600)
    for event in events:
        if event.workflow_id not in ids:
            continue
        if isinstance(event, TaskScheduled):
            scheduled[(event.workflow_id, event.task_id)] = event.at
        elif isinstance(event, TaskCompleted):
            latencies.append(event.at - scheduled[(event.workflow_id, event.task_id)])
        elif isinstance(event, TERMINAL_EVENTS):
            pending.discard(event.workflow_id)
            if not pending:
                break
    events.close()
    elapsed = time.monotonic() - began
    print(f"workflows: {len(ids)} x {tasks} tasks in {elapsed:.2f} s")
    print(
        f"throughput: {len(ids) / elapsed:.0f} workflows/s, {len(latencies) / elapsed:.0f} tasks/s"
    )
    print(
        f"per-task latency: p50 {percentile(latencies, 50):.1f} ms, "
        f"p99 {percentile(latencies, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
