"""Operators at scale: a FORK_JOIN_DYNAMIC of 1,000 worker tasks and DO_WHILE loops of 1,000.

Prints each workflow's wall time (start request to WorkflowCompleted read back) and the
processor's peak resident memory (VmHWM), one processor and one worker process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import bench_settings

from orchestrator.client import Client
from orchestrator.dsl import parse_definition
from orchestrator.stack import LocalStack

FAN_OUT = {
    "name": "bench_fan_out",
    "tasks": [
        {
            "name": "fan",
            "taskReferenceName": "fan",
            "type": "FORK_JOIN_DYNAMIC",
            "inputParameters": {
                "forkTaskName": "bench_step",
                "forkTaskInputs": "${workflow.input.items}",
            },
        },
        {"name": "join", "taskReferenceName": "join", "type": "JOIN"},
    ],
    "outputParameters": {"joined": "${join.output.bench_step_999.n}"},
}
LOOP_WORKER = {
    "name": "bench_loop_worker",
    "tasks": [
        {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "inputParameters": {"items": "${workflow.input.items}"},
            "loopOver": [
                {
                    "name": "bench_step",
                    "taskReferenceName": "step",
                    "inputParameters": {"n": "${loop.output.index}"},
                }
            ],
        }
    ],
    "outputParameters": {"iterations": "${loop.output.iteration}"},
}
LOOP_INLINE = {
    "name": "bench_loop_inline",
    "tasks": [
        {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "loopCondition": "$.loop['iteration'] < $.count",
            "inputParameters": {"count": "${workflow.input.count}"},
            "loopOver": [
                {
                    "name": "step",
                    "taskReferenceName": "step",
                    "type": "INLINE",
                    "inputParameters": {
                        "evaluatorType": "javascript",
                        "i": "${loop.output.iteration}",
                        "expression": "$.i * 2",
                    },
                }
            ],
        }
    ],
    "outputParameters": {"iterations": "${loop.output.iteration}"},
}


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(client: Client, name: str, workflow_input: dict[str, object]) -> tuple[float, object]:
    """Run one workflow; its wall time and output."""
    began = time.monotonic()
    workflow_id = client.start(name, input=workflow_input)
    state = client.wait(workflow_id, timeout=600)
    assert state.status == "COMPLETED", state.reason
    return time.monotonic() - began, state.output


def main() -> None:
    """Run the three workflows and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_settings(state_dir=Path(tmp)) as settings,
        LocalStack(settings, embedded_broker=False) as stack,
    ):
        processor = stack.spawn(
            "processor", "processor", "--instance-id", "bench", log_path=Path(tmp) / "p.log"
        )
        stack.spawn(
            "worker", "worker", "workers.bench", "--concurrency", "32", log_path=Path(tmp) / "w.log"
        )
        client = Client(settings)
        client.register([parse_definition(d) for d in (FAN_OUT, LOOP_WORKER, LOOP_INLINE)])
        timed(client, "bench_fan_out", {"items": [{"n": 1}]})  # warm-up: group joins, topics
        items = [{"n": i} for i in range(args.size)]
        seconds, output = timed(client, "bench_fan_out", {"items": items})
        print(f"FORK_JOIN_DYNAMIC of {args.size} worker tasks: {seconds:.2f} s (output {output})")
        seconds, output = timed(client, "bench_loop_inline", {"count": args.size})
        print(
            f"DO_WHILE of {args.size} iterations (INLINE body): {seconds:.2f} s (output {output})"
        )
        seconds, output = timed(client, "bench_loop_worker", {"items": list(range(args.size))})
        print(
            f"DO_WHILE of {args.size} iterations (worker task body): {seconds:.2f} s "
            f"(output {output})"
        )
        print(f"processor peak memory: {peak_rss_mb(processor.pid):.0f} MB")


if __name__ == "__main__":
    main()
