"""Record the golden logs in ``tests/replay/logs/`` by running scenarios through the engine.

Run once, when a scenario is added:

    .venv/bin/python -m tests.replay.record

Existing files are history and are never overwritten (``--force`` does it, for a deliberate
change of meaning that the commit must explain). Each file holds the events as JSON objects with
a ``type`` field and the state their fold gave when it was recorded.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from orchestrator.dsl import WorkflowDef, parse_definition
from orchestrator.engine import WorkflowState, decide, evolve
from orchestrator.engine.records import (
    AnyEvent,
    Input,
    ResultStatus,
    StartWorkflow,
    TaskResult,
    TerminateWorkflow,
)

LOGS = Path(__file__).resolve().parent / "logs"
START = 1_735_689_600_000  # 2025-01-01T00:00:00Z

ORDER = parse_definition(
    {
        "name": "order_fulfilment",
        "version": 2,
        "description": "charge, pack and ship an order",
        "inputParameters": ["orderId", "amount"],
        "tasks": [
            {
                "name": "charge_card",
                "taskReferenceName": "charge",
                "inputParameters": {
                    "amount": "${workflow.input.amount}",
                    "customer": "${workflow.input.customer.name}",
                },
            },
            {
                "name": "pack",
                "taskReferenceName": "pack",
                "inputParameters": {
                    "receipt": "${charge.output.receipt}",
                    "label": "order ${workflow.input.orderId} for ${workflow.input.customer.name}",
                    "skus": "${workflow.input.lines[*].sku}",
                },
            },
            {
                "name": "ship",
                "taskReferenceName": "ship",
                "inputParameters": {"parcel": "${pack.output}", "first": "${pack.output.ids[0]}"},
                "retryCount": 2,
            },
        ],
        "outputParameters": {
            "tracking": "${ship.output.tracking}",
            "receipt": "${charge.output.receipt}",
            "missing": "${ship.output.nothing}",
        },
    }
)
PLAIN = parse_definition(
    {
        "name": "plain",
        "tasks": [
            {"name": "step", "taskReferenceName": "one"},
            {"name": "step", "taskReferenceName": "two", "inputParameters": {"x": "${one.output}"}},
        ],
    }
)
ORDER_INPUT = {
    "orderId": "o-42",
    "amount": 12.5,
    "customer": {"name": "Zoë Ünal"},
    "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
}


class Definitions:
    """The two definitions above, by name and version."""

    def task_def(self, name: str) -> None:
        """No task types are registered: no retries, no timeouts."""
        return

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """ORDER or PLAIN when name (and version, if given) match."""
        for definition in (ORDER, PLAIN):
            if definition.name == name and version in (None, definition.version):
                return definition
        return None


def run(workflow_id: str, inputs: list[Input]) -> tuple[list[AnyEvent], WorkflowState]:
    """Decide and fold ``inputs`` as the processor does, one millisecond apart."""
    state: WorkflowState | None = None
    events: list[AnyEvent] = []
    for offset, item in enumerate(inputs):
        decision = decide(state, item, Definitions(), START + 1000 * offset)
        for event in decision.events:
            state = evolve(state, event)
        events.extend(decision.events)
    assert state is not None
    assert all(event.workflow_id == workflow_id for event in events)
    return events, state


def result(wid: str, task: str, status: ResultStatus, output: Any = None, **kw: Any) -> TaskResult:
    """A worker's result for attempt 1 of ``task``."""
    return TaskResult(
        workflow_id=wid,
        task_id=task,
        attempt=1,
        status=status,
        output=output,
        worker_id="w-1",
        **kw,
    )


def completed_run() -> tuple[str, list[Input]]:
    """ORDER runs to the end, with a heartbeat, a duplicate and a stale result on the way."""
    wid = "wf-completed"
    ok = ResultStatus.COMPLETED
    return "a three-task order that completes, with resolved inputs and outputs", [
        StartWorkflow(
            workflow_id=wid, name="order_fulfilment", input=ORDER_INPUT, correlation_id="c-1"
        ),
        result(wid, "charge", ResultStatus.IN_PROGRESS, {"pct": 50}),
        result(wid, "charge", ok, {"receipt": "r-9", "amount": 12.5}),
        result(wid, "charge", ok, {"receipt": "duplicate"}),
        TaskResult(workflow_id=wid, task_id="pack", attempt=2, status=ok),
        result(wid, "pack", ok, {"ids": ["p-1", "p-2"], "weight": 1.25}),
        result(wid, "ship", ok, {"tracking": "TRK-1", "carrier": "ÜPS"}),
        TerminateWorkflow(workflow_id=wid, reason="too late"),
    ]


def failed_run() -> tuple[str, list[Input]]:
    """ORDER fails at its second task with a terminal error."""
    wid = "wf-failed"
    return "an order whose second task fails with a terminal error", [
        StartWorkflow(workflow_id=wid, name="order_fulfilment", version=2, input=ORDER_INPUT),
        result(wid, "charge", ResultStatus.COMPLETED, {"receipt": "r-1"}),
        result(
            wid,
            "pack",
            ResultStatus.FAILED_WITH_TERMINAL_ERROR,
            reason="warehouse closed",
            error_type="ClosedError",
        ),
        result(wid, "pack", ResultStatus.COMPLETED, {"late": True}),
    ]


def terminated_run() -> tuple[str, list[Input]]:
    """PLAIN is terminated while its second task runs; a second terminate is rejected."""
    wid = "wf-terminated"
    return "a run terminated mid-way, then terminated again", [
        StartWorkflow(workflow_id=wid, name="plain", input={"n": 1}),
        result(wid, "one", ResultStatus.COMPLETED, [1, {"two": None}]),
        result(wid, "two", ResultStatus.IN_PROGRESS),
        TerminateWorkflow(workflow_id=wid, reason="operator: stop"),
        TerminateWorkflow(workflow_id=wid),
        result(wid, "two", ResultStatus.COMPLETED, {"late": True}),
    ]


def rejected_start() -> tuple[str, list[Input]]:
    """A start naming an unknown version is rejected; a duplicate start and a terminate follow."""
    wid = "wf-rejected"
    return "a start for an unregistered definition version is rejected", [
        StartWorkflow(workflow_id=wid, name="order_fulfilment", version=7, input={"a": 1}),
        StartWorkflow(workflow_id=wid, name="plain"),
        TerminateWorkflow(workflow_id=wid, reason="cleanup"),
    ]


def last_output_run() -> tuple[str, list[Input]]:
    """PLAIN (no outputParameters) completes with its last task's output."""
    wid = "wf-last-output"
    return "a run without outputParameters completes with the last task's output", [
        StartWorkflow(workflow_id=wid, name="plain"),
        result(wid, "one", ResultStatus.COMPLETED, "text"),
        result(wid, "two", ResultStatus.COMPLETED, {"final": [True, False, None]}),
    ]


SCENARIOS: dict[str, Callable[[], tuple[str, list[Input]]]] = {
    "completed": completed_run,
    "failed": failed_run,
    "terminated": terminated_run,
    "rejected": rejected_start,
    "last_output": last_output_run,
}


def event_json(event: AnyEvent) -> dict[str, Any]:
    """An event as a JSON object: ``type`` and then its fields."""
    return {"type": type(event).__name__} | {
        field.name: getattr(event, field.name) for field in dataclasses.fields(event)
    }


def record(name: str) -> bytes:
    """The golden file of scenario ``name``."""
    description, inputs = SCENARIOS[name]()
    events, state = run(inputs[0].workflow_id, inputs)
    document = {
        "description": description,
        "events": [event_json(e) for e in events],
        "state": state.to_json(),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> int:
    """Write every scenario's golden file that does not exist yet (all of them with --force)."""
    parser = argparse.ArgumentParser(prog="python -m tests.replay.record")
    parser.add_argument("--force", action="store_true", help="overwrite existing golden logs")
    args = parser.parse_args(argv)
    LOGS.mkdir(exist_ok=True)
    for name in SCENARIOS:
        path = LOGS / f"{name}.json"
        if path.exists() and not args.force:
            print(f"kept {path.name} (history; --force to overwrite)")
            continue
        path.write_bytes(record(name))
        print(f"wrote {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
