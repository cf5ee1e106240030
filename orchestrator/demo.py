"""``orchestrator demo``: the example content pipeline, end to end, on an embedded broker."""

from __future__ import annotations

import tempfile
import time
from importlib import resources
from pathlib import Path

import click
import orjson

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl.validate import load_definition_file
from orchestrator.engine.records import (
    Event,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from orchestrator.stack import LocalStack

DEMO_INPUT = {"topic": "event-sourced workflow engines", "audience": "platform engineers"}


def definition_path() -> Path:
    """The example workflow definition shipped with the example workers."""
    return Path(str(resources.files("workers").joinpath("content_pipeline.json")))


def run_demo(settings: Settings) -> int:
    """Start the stack, run one workflow, print its progress and output; 0 if it completed."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-demo-") as tmp:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        settings = settings.model_copy(
            update={"state_dir": Path(tmp) / "state", "log_format": "json"}
        )
        click.echo("starting the embedded broker, a processor and the example workers ...")
        with LocalStack(settings) as stack:
            stack.spawn(
                "processor", "processor", "--instance-id", "demo", log_path=logs / "processor.log"
            )
            stack.spawn("worker", "worker", "workers.examples", log_path=logs / "worker.log")
            client = Client(stack.settings)
            for key in client.register(load_definition_file(definition_path())):
                click.echo(f"registered {key}")
            workflow_id = f"demo-{int(time.time())}"
            offset = client.end_offset(workflow_id)
            client.start("content_pipeline", input=DEMO_INPUT, workflow_id=workflow_id)
            click.echo(
                f"started workflow {workflow_id} with input {orjson.dumps(DEMO_INPUT).decode()}"
            )
            started = time.monotonic()
            state = client.wait(
                workflow_id,
                timeout=120,
                from_offset=offset,
                on_event=lambda event: _progress(event, time.monotonic() - started),
            )
            click.echo(f"\nworkflow {state.status}; output:")
            click.echo(orjson.dumps(state.output, option=orjson.OPT_INDENT_2).decode())
            if state.status != "COMPLETED":
                click.echo(f"reason: {state.reason}\nlogs: {logs}", err=True)
                return 1
        click.echo("\nstopped the workers, the processor and the broker.")
        return 0


def _progress(event: Event, elapsed: float) -> None:
    match event:
        case WorkflowStarted():
            line = f"workflow started: {event.name} v{event.version}"
        case TaskScheduled():
            line = f"scheduled  {event.ref_name} ({event.task_type})"
        case TaskCompleted():
            line = f"completed  {event.task_id}: {_short(event.output)}"
        case TaskFailed():
            line = f"failed     {event.task_id}: {event.reason}"
        case WorkflowCompleted():
            line = "workflow completed"
        case WorkflowFailed():
            line = f"workflow failed: {event.reason}"
        case _:
            line = type(event).__name__
    click.echo(f"  [{elapsed:6.2f}s] #{event.seq:<3} {line}")


def _short(value: object, limit: int = 90) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
