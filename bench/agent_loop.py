"""The agent loop's engine overhead per step: a 20-step tool_agent run against a slow fake LLM.

Every chat reply of the fake takes ``--delay-ms`` (50); the model calls ``calculator`` 19 times,
then answers (20 LLM calls). One warm-up run, then ``--runs`` timed runs, one after another.

Method. Event timestamps (``at``, the processor's batch start in whole ms) are too coarse for a
budget of 10 ms, so steps are timed where the clock is precise, all with ``time.time()`` on one
machine: the fake LLM stamps each chat request when its request line arrives (``r``) and when
its reply, delayed, starts being sent (``a``); the tool worker stamps each handler call (start
``s``, end ``e``, via ``AGENT_TRACE_FILE``). For step k:

- step time   = r[k+1] - r[k]: LLM request to LLM request. It equals the time between the two
  steps' LLM tasks being scheduled, with the LLM worker's pick-up delay moved from one step to
  the next (the delays telescope; the total over the run is exact). The step time between
  the two TaskScheduled events' ``at`` is printed beside it as a cross-check;
- LLM time    = a[k] - r[k] (>= delay);
- overhead    = step time - LLM time = r[k+1] - a[k]: everything between the model's reply
  leaving and the next request arriving (two trips through the processor, the tool, the HTTP
  round trip's ends). The last step has no next request, so 19 steps per run are measured.

The overhead is split into four hops at the tool's stamps and at the ``at`` of the LLM's and the
tool's TaskCompleted (the processor's batch start, whole ms, so each of those parts is off by up
to 1 ms): LLM reply -> the processor's batch (LLM worker reads the reply, publishes the result,
the processor fetches it); batch -> tool starts (decide SWITCH and DYNAMIC, commit the Kafka
transaction, write RocksDB, the tool worker fetches the committed command); tool result ->
batch; batch -> next LLM request (decide INLINE, SET_VARIABLE, loop condition and the next LLM
task, commit, write, the LLM worker fetches the command and sends the request).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from common import bench_settings, percentile

from examples.agent import EXAMPLE
from examples.common import ExampleStack
from orchestrator.engine.records import Event, TaskCompleted, TaskScheduled
from workers.llm.fake_server import FakeLLM, FakeRequest

Json = Any
BUDGET_MS = 10.0
ANSWER = "The answer is 42."


def script(steps: int, delay_ms: int) -> Json:
    """``steps - 1`` calculator calls, then a final answer; every reply ``delay_ms`` late."""
    call = {"name": "calculator", "arguments": {"expression": "6 * 7"}}
    return [
        {"times": steps - 1, "delay_ms": delay_ms, "reply": {"tool_calls": [call]}},
        {"delay_ms": delay_ms, "reply": ANSWER},
    ]


@dataclasses.dataclass
class Step:
    """One measured step, in ms; the four hops add up to the overhead, less the tool's run."""

    number: int
    total: float
    scheduled: float
    llm: float
    answer_to_batch: float
    batch_to_tool: float
    tool: float
    tool_to_batch: float
    batch_to_request: float

    @property
    def overhead(self) -> float:
        """The step's time outside the LLM."""
        return self.total - self.llm


def measure(chats: list[FakeRequest], traces: list[Json], history: list[Event]) -> list[Step]:
    """The steps of one run, from the fake's stamps, the tool trace and the history."""
    tools = {t["task_id"]: t for t in traces}
    decided = {
        e.task_id: float(e.at)
        for e in history
        if isinstance(e, TaskCompleted) and e.task_id.startswith(("think__", "use_tool__"))
    }
    scheduled = {
        e.task_id: float(e.at)
        for e in history
        if isinstance(e, TaskScheduled) and e.task_id.startswith("think__")
    }
    result = []
    for k, (request, following) in enumerate(itertools.pairwise(chats), start=1):
        assert request.answered_at is not None
        tool = tools[f"use_tool__{k}"]
        answered, start, end = ms(request.answered_at), ms(tool["start"]), ms(tool["end"])
        llm_batch, tool_batch = decided[f"think__{k}"], decided[f"use_tool__{k}"]
        result.append(
            Step(
                number=k,
                total=ms(following.received_at - request.received_at),
                scheduled=scheduled[f"think__{k + 1}"] - scheduled[f"think__{k}"],
                llm=answered - ms(request.received_at),
                answer_to_batch=llm_batch - answered,
                batch_to_tool=start - llm_batch,
                tool=end - start,
                tool_to_batch=tool_batch - end,
                batch_to_request=ms(following.received_at) - tool_batch,
            )
        )
    return result


def ms(seconds: float) -> float:
    """Seconds as milliseconds."""
    return seconds * 1000


def run_once(stack: ExampleStack, llm: FakeLLM, trace: Path, steps: int, delay_ms: int) -> Json:
    """One timed run: its steps, wall time, LLM time and when it began and first asked."""
    llm.load(script(steps, delay_ms))
    trace.write_bytes(b"")
    asked = len(llm.requests)
    began = time.time()
    run = stack.start(f"agent-bench-{time.time_ns()}", {"question": "bench", "maxSteps": steps})
    state = stack.finish(run)
    elapsed = time.time() - began
    if state.status != "COMPLETED" or state.output["stoppedBy"] != "final_answer":
        sys.exit(f"run {run.workflow_id} ended {state.status}: {state.reason} {state.output}")
    chats = [r for r in llm.requests[asked:] if r.path == "/v1/chat/completions"]
    assert len(chats) == steps, f"{len(chats)} chat requests, expected {steps}"
    traces = [orjson.loads(line) for line in trace.read_bytes().splitlines()]
    history = run.client.history(run.workflow_id)
    return {
        "steps": measure(chats, traces, history),
        "elapsed": elapsed,
        "llm_total": sum(ms(r.answered_at - r.received_at) for r in chats if r.answered_at),
        "began": began,
        "first_request": chats[0].received_at,
    }


def spread(values: list[float]) -> str:
    """p50/p90/p99/max of ``values`` (ms)."""
    return (
        f"p50 {percentile(values, 50):6.2f}  p90 {percentile(values, 90):6.2f}  "
        f"p99 {percentile(values, 99):6.2f}  max {max(values):6.2f}"
    )


def report(label: str, steps: list[Step]) -> float:
    """Print the figures of ``steps``; return the overhead's p50."""
    overhead = [s.overhead for s in steps]
    rows = [
        ("step time", [s.total for s in steps]),
        ("  cross-check: by events' at", [s.scheduled for s in steps]),
        ("LLM time", [s.llm for s in steps]),
        ("engine overhead", overhead),
        ("  LLM reply -> processor batch", [s.answer_to_batch for s in steps]),
        ("  batch -> tool handler starts", [s.batch_to_tool for s in steps]),
        ("  tool handler", [s.tool for s in steps]),
        ("  tool result -> processor batch", [s.tool_to_batch for s in steps]),
        ("  batch -> next LLM request", [s.batch_to_request for s in steps]),
    ]
    print(f"{label}: {len(steps)} steps (ms)")
    for name, values in rows:
        print(f"  {name:32} {spread(values)}")
    return percentile(overhead, 50)


def by_step(steps: list[Step]) -> str:
    """The median overhead of each step number, to show growth with the conversation."""
    numbers = sorted({s.number for s in steps})
    medians = [statistics.median(s.overhead for s in steps if s.number == n) for n in numbers]
    return " ".join(f"{m:.0f}" for m in medians)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up run")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable of the worker process only, for experiments such as\n"
        "ORCH_KAFKA_FETCH_WAIT_MAX_MS=1 (ORCH_KAFKA_* set in this shell reach every process)",
    )
    args = parser.parse_args()
    if os.environ.get("OPENAI_BASE_URL"):
        sys.exit("unset OPENAI_BASE_URL: the benchmark scripts the fake LLM")
    print(__doc__)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_settings(state_dir=Path(tmp)) as settings,
    ):
        trace = Path(tmp) / "tools.jsonl"
        env = dict(item.split("=", 1) for item in args.worker_env)
        example = dataclasses.replace(EXAMPLE, env={**env, "AGENT_TRACE_FILE": str(trace)})
        with ExampleStack(
            example, settings, embedded_broker=False, logs=Path(tmp) / "logs"
        ) as stack:
            assert stack.llm is not None
            run_once(stack, stack.llm, trace, args.steps, args.delay_ms)  # warm-up: group joins
            measured: list[Step] = []
            for number in range(1, args.runs + 1):
                result = run_once(stack, stack.llm, trace, args.steps, args.delay_ms)
                measured.extend(result["steps"])
                first = ms(result["first_request"] - result["began"])
                print(
                    f"\nrun {number}: {args.steps} steps in {ms(result['elapsed']):.0f} ms "
                    f"(client side, start to end), of which LLM {result['llm_total']:.0f} ms; "
                    f"start -> first LLM request {first:.0f} ms (a new client's first request)"
                )
                report(f"run {number}", result["steps"])
            print()
            p50 = report(f"all {args.runs} runs", measured)
            print(f"  median overhead by step number 1..{args.steps - 1}: {by_step(measured)}")
            verdict = "yes" if p50 < BUDGET_MS else "NO"
            print(f"\nengine overhead p50 {p50:.2f} ms < {BUDGET_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
