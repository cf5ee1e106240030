"""The ``orchestrator`` command."""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from hashlib import sha256
from pathlib import Path
from types import FrameType
from typing import Any

import click
import orjson

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl.validate import load_definition_file, validate_set
from orchestrator.engine.records import (
    Event,
    PauseWorkflow,
    Record,
    RerunWorkflow,
    RestartWorkflow,
    ResultStatus,
    ResumeWorkflow,
    RetryWorkflow,
    SkipTask,
    TerminateWorkflow,
    as_json,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import OrchestratorError
from orchestrator.log.kafka import admin_client, check_reachable
from orchestrator.log.topics import ensure_topics
from orchestrator.telemetry import configure_logging

SETTING_FLAGS = ("bootstrap", "topic_prefix", "state_dir", "partitions", "log_format", "log_level")


def _settings(ctx: click.Context, **extra: Any) -> Settings:
    overrides = {k: v for k, v in {**ctx.obj, **extra}.items() if v is not None}
    return Settings(**overrides)


def _dump(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for commands that run until told to stop."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bootstrap", envvar="ORCH_BOOTSTRAP", help="Kafka bootstrap servers.")
@click.option("--topic-prefix", envvar="ORCH_TOPIC_PREFIX", help="Prefix of every topic.")
@click.option("--state-dir", envvar="ORCH_STATE_DIR", type=click.Path(path_type=Path))
@click.option("--partitions", envvar="ORCH_PARTITIONS", type=int, help="Partitions per topic.")
@click.option("--log-format", envvar="ORCH_LOG_FORMAT", type=click.Choice(["console", "json"]))
@click.option("--log-level", envvar="ORCH_LOG_LEVEL")
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """A Kafka-native, event-sourced workflow engine. Kafka settings: ORCH_KAFKA_<PROPERTY>."""
    ctx.obj = options
    settings = _settings(ctx)
    configure_logging(settings.log_format, settings.log_level)


@cli.command()
@click.option("--port", type=int, default=9092, show_default=True)
def broker(port: int) -> None:
    """Run the embedded broker (tansu, memory only) on 127.0.0.1:PORT in the foreground."""
    from orchestrator.log.broker import run_foreground

    sys.exit(run_foreground(port))


@cli.group()
def topics() -> None:
    """Manage the topics."""


@topics.command("create")
@click.option("--partitions", type=int, help="Partitions of requests, results and events.")
@click.pass_context
def topics_create(ctx: click.Context, partitions: int | None) -> None:
    """Create every topic the engine needs (idempotent)."""
    settings = _settings(ctx, partitions=partitions)
    check_reachable(settings)
    ensure_topics(admin_client(settings), settings)
    click.echo(
        f"topics ready under prefix {settings.topic_prefix!r} ({settings.partitions} partitions)"
    )


@cli.group()
def definitions() -> None:
    """Manage workflow definitions."""


@definitions.command("register")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path), required=True)
@click.pass_context
def definitions_register(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Validate definition files, then publish them all (nothing is published if one is bad).

    Sub-workflows are checked against each other and what is registered: a cycle is an error,
    a sub-workflow nobody registered yet is a warning.
    """
    from orchestrator.processor.definitions import DefinitionTable

    sources: dict[str, str] = {}
    parsed = []
    for path in files:
        for definition in load_definition_file(path):
            sources[definition.key] = str(path)
            parsed.append(definition)
    settings = _settings(ctx)
    client = Client(settings)
    table = DefinitionTable(settings)
    try:
        table.refresh()
        warnings = validate_set(parsed, known=table, sources=sources)
    finally:
        table.close()
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    for key in client.register(parsed):
        click.echo(f"registered {key}")


@cli.group()
def taskdefs() -> None:
    """Manage task definitions (retries, backoff, timeouts)."""


@taskdefs.command("register")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path), required=True)
@click.pass_context
def taskdefs_register(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Validate Conductor TaskDef files (one or a list each), then publish them all."""
    from orchestrator.dsl.validate import load_task_definition_file

    parsed = [task_def for path in files for task_def in load_task_definition_file(path)]
    for name in Client(_settings(ctx)).register_task_definitions(parsed):
        click.echo(f"registered task definition {name}")


def _send(ctx: click.Context, request: Record) -> None:
    Client(_settings(ctx)).request(request)
    click.echo(f"{type(request).__name__} sent for {request.workflow_id}")


@cli.command()
@click.argument("workflow_id")
@click.option("--reason", default="", help="Recorded with the termination.")
@click.pass_context
def terminate(ctx: click.Context, workflow_id: str, reason: str) -> None:
    """Terminate a running workflow (and its running sub-workflows)."""
    _send(ctx, TerminateWorkflow(workflow_id=workflow_id, reason=reason))


@cli.command()
@click.argument("workflow_id")
@click.option("--reason", default="")
@click.pass_context
def pause(ctx: click.Context, workflow_id: str, reason: str) -> None:
    """Pause a workflow: no new task is scheduled until it resumes; results still land."""
    _send(ctx, PauseWorkflow(workflow_id=workflow_id, reason=reason))


@cli.command()
@click.argument("workflow_id")
@click.pass_context
def resume(ctx: click.Context, workflow_id: str) -> None:
    """Resume a paused workflow."""
    _send(ctx, ResumeWorkflow(workflow_id=workflow_id))


@cli.command()
@click.argument("workflow_id")
@click.pass_context
def retry(ctx: click.Context, workflow_id: str) -> None:
    """Retry a FAILED, TIMED_OUT or TERMINATED workflow from its failed task."""
    _send(ctx, RetryWorkflow(workflow_id=workflow_id))


@cli.command()
@click.argument("workflow_id")
@click.option("--latest", is_flag=True, help="Restart with the latest definition version.")
@click.pass_context
def restart(ctx: click.Context, workflow_id: str, latest: bool) -> None:
    """Restart an ended workflow from the beginning, with the same id."""
    _send(ctx, RestartWorkflow(workflow_id=workflow_id, use_latest_definition=latest))


@cli.command()
@click.argument("workflow_id")
@click.option("--from", "from_task", required=True, help="The task ref to run again from.")
@click.pass_context
def rerun(ctx: click.Context, workflow_id: str, from_task: str) -> None:
    """Run a workflow again from a given task: it and every later task start anew."""
    _send(ctx, RerunWorkflow(workflow_id=workflow_id, from_task=from_task))


@cli.command()
@click.argument("workflow_id")
@click.argument("task_ref", metavar="REF")
@click.option("--output", "output_json", default="{}", help="The skipped task's output as JSON.")
@click.pass_context
def skip(ctx: click.Context, workflow_id: str, task_ref: str, output_json: str) -> None:
    """Skip a task (running, or not started yet): the workflow goes on without it."""
    _send(
        ctx, SkipTask(workflow_id=workflow_id, task_ref=task_ref, output=_json_option(output_json))
    )


def _json_option(text: str, name: str = "--output") -> Any:
    """The JSON a command option holds; a clear usage error naming the option otherwise."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=name) from exc


config_option = click.option(
    "--config",
    "config_path",
    envvar="ORCH_CONFIG_FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A TOML file of live settings (log level, worker limits...), reloaded when it changes.",
)


def _remember_setting(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and param.name is not None:
        ctx.obj[param.name] = value


metrics_port_option = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    expose_value=False,
    callback=_remember_setting,
    help="Serve /healthz, /readyz and /metrics on this port (ORCH_METRICS_PORT; 0: off; "
    "ORCH_METRICS_HOST: the address, loopback by default).",
)


@cli.command()
@click.option("--instance-id", help="Stable id of this instance (default: from the state dir).")
@config_option
@metrics_port_option
@click.pass_context
def processor(ctx: click.Context, instance_id: str | None, config_path: Path | None) -> None:
    """Run a processor instance until SIGTERM (--config: the log level follows the file)."""
    from orchestrator.live_config import watching
    from orchestrator.observability import configure_observability
    from orchestrator.processor.loop import Processor

    settings = _settings(ctx)
    configure_observability(settings, "orchestrator-processor")
    check_reachable(settings)
    ensure_topics(admin_client(settings), settings)
    instance = (
        instance_id or "p-" + sha256(str(settings.state_dir.resolve()).encode()).hexdigest()[:10]
    )
    with watching(config_path, settings):
        Processor(settings, instance).run(_stop_on_signals())


@cli.command()
@click.argument("target", metavar="MODULE[:ATTR]")
@click.option("--concurrency", type=int, default=8, show_default=True)
@config_option
@metrics_port_option
@click.pass_context
def worker(ctx: click.Context, target: str, concurrency: int, config_path: Path | None) -> None:
    """Run the task handlers a module's Worker declares (ATTR defaults to `worker`).

    With --config, the file's [worker] concurrency and rate limits (and the log level) apply
    while the worker runs; --concurrency is the bound when the file sets none.
    """
    from orchestrator.live_config import watching
    from orchestrator.observability import configure_observability
    from orchestrator.worker import WorkerLimits

    module_name, _, attr = target.partition(":")
    sys.path.insert(0, str(Path.cwd()))
    try:
        instance = getattr(importlib.import_module(module_name), attr or "worker")
    except (ImportError, AttributeError) as exc:
        raise click.ClickException(f"cannot load worker {target!r}: {exc}") from exc
    settings = _settings(ctx)
    configure_observability(settings, "orchestrator-worker")
    check_reachable(settings)
    limits = WorkerLimits(concurrency)
    with watching(config_path, settings, limits.apply):
        instance.run(settings, limits=limits, stop=_stop_on_signals())


@cli.command()
@click.argument("name")
@click.option("--version", type=int, help="Definition version (default: the latest).")
@click.option("--input", "input_json", default="{}", help="Workflow input as JSON.")
@click.option("--id", "workflow_id", help="Workflow id (default: a new UUID).")
@click.option("--correlation-id")
@click.option("--wait", is_flag=True, help="Wait for the end; print status and output as JSON.")
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.pass_context
def start(
    ctx: click.Context,
    name: str,
    version: int | None,
    input_json: str,
    workflow_id: str | None,
    correlation_id: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Publish a StartWorkflow request and print the workflow id."""
    workflow_input = _json_option(input_json, "--input")
    client = Client(_settings(ctx))
    offset = client.end_offset(workflow_id) if workflow_id and wait else 0
    workflow_id = client.start(
        name,
        version=version,
        input=workflow_input,
        workflow_id=workflow_id,
        correlation_id=correlation_id,
    )
    click.echo(workflow_id)
    if wait:
        state = client.wait(workflow_id, timeout=timeout, from_offset=offset)
        click.echo(_dump(_summary(state)))
        if state.status != "COMPLETED":
            sys.exit(1)


def _summary(state: WorkflowState) -> dict[str, Any]:
    return {
        "workflowId": state.workflow_id,
        "name": state.name,
        "version": state.version,
        "status": str(state.status),
        "reason": state.reason,
        "output": state.output,
    }


@cli.command("signal")
@click.argument("workflow_id")
@click.argument("task_ref", metavar="REF")
@click.option("--output", "output_json", default="{}", help="The task's output as JSON.")
@click.option("--fail", "reason", help="Fail the task with this reason instead of completing it.")
@click.pass_context
def signal_task(
    ctx: click.Context, workflow_id: str, task_ref: str, output_json: str, reason: str | None
) -> None:
    """Complete a waiting WAIT or HUMAN task (REF: its taskReferenceName or task id)."""
    output = _json_option(output_json)
    status = ResultStatus.FAILED if reason else ResultStatus.COMPLETED
    Client(_settings(ctx)).signal(
        workflow_id, task_ref, output=output, status=status, reason=reason
    )
    click.echo(f"signal sent to {workflow_id} {task_ref}")


@cli.command()
@click.argument("workflow_id")
@click.option("--json", "as_json_output", is_flag=True)
@click.pass_context
def status(ctx: click.Context, workflow_id: str, as_json_output: bool) -> None:
    """Show a workflow's state, folded from its events in the log."""
    state = Client(_settings(ctx)).status(workflow_id)
    if as_json_output:
        click.echo(_dump({**state.to_json(), "tasks": [t.to_json() for t in state.tasks.values()]}))
        return
    click.echo(f"workflow  {state.workflow_id}\nname      {state.name} v{state.version}")
    click.echo(f"status    {state.status}" + (f"  ({state.reason})" if state.reason else ""))
    for task in state.tasks.values():
        click.echo(
            f"  {task.ref_name:<24} {task.task_type:<24} {task.status:<12} attempt {task.attempt}"
        )
    if state.output is not None:
        click.echo(f"output    {orjson.dumps(state.output).decode()}")


@cli.command()
@click.argument("workflow_id")
@click.option("--json", "as_json_output", is_flag=True, help="One JSON object per line.")
@click.option("--at", "at_seq", type=click.IntRange(min=1), help="Show the state as of event N.")
@click.pass_context
def history(ctx: click.Context, workflow_id: str, as_json_output: bool, at_seq: int | None) -> None:
    """Print a workflow's events, read from the log (or, with --at, its state back then)."""
    client = Client(_settings(ctx))
    if at_seq is not None:
        from orchestrator.audit import history_at

        click.echo(_dump(history_at(client, workflow_id, at_seq)))
        return
    events = client.history(workflow_id)
    if not events:
        raise OrchestratorError(f"no events for workflow {workflow_id}")
    for event in events:
        click.echo(orjson.dumps(as_json(event)).decode() if as_json_output else describe(event))


def describe(event: Event) -> str:
    """One readable line for an event."""
    fields = {
        k: v
        for k, v in as_json(event).items()
        if k not in ("type", "workflow_id", "seq", "at", "definition")
    }
    detail = " ".join(
        f"{k}={orjson.dumps(v).decode()}" for k, v in fields.items() if v not in (None, "")
    )
    return f"#{event.seq:<4} {type(event).__name__:<20} {detail}"


@cli.command()
@click.pass_context
def rebuild(ctx: click.Context) -> None:
    """Drop the RocksDB state under --state-dir and rebuild it from the events topic."""
    from orchestrator.processor.rebuild import rebuild as run_rebuild

    settings = _settings(ctx)
    check_reachable(settings)
    for result in run_rebuild(settings):
        click.echo(
            f"partition {result.partition}: {result.events} events replayed "
            f"in {result.seconds:.2f} s (checkpoint {result.checkpoint})"
        )


@cli.command()
@click.option("--api-port", type=int, default=8080, show_default=True, help="0: no API.")
@click.pass_context
def dev(ctx: click.Context, api_port: int) -> None:
    """Broker + topics + processor + example workers + API and UI (no auth), until Ctrl-C."""
    from orchestrator.stack import LocalStack

    settings = _settings(ctx)
    with LocalStack(settings, embedded_broker=ctx.obj.get("bootstrap") is None) as stack:
        stack.spawn("processor", "processor", "--instance-id", "dev")
        stack.spawn("worker", "worker", "workers.examples")
        stack.spawn("system-worker", "worker", "workers.system")
        if api_port:
            stack.spawn("api", "api", "--port", str(api_port), "--no-auth")
        click.echo(
            f"dev stack up: ORCH_BOOTSTRAP={stack.settings.bootstrap} "
            f"ORCH_TOPIC_PREFIX={stack.settings.topic_prefix}  (Ctrl-C stops it)"
        )
        if api_port:
            click.echo(f"API and UI (authentication off): http://127.0.0.1:{api_port}/ui/")
        _stop_on_signals().wait()


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Run the example content pipeline end to end on an embedded broker, then clean up."""
    from orchestrator.demo import run_demo

    sys.exit(run_demo(_settings(ctx)))


def _attach_operations() -> None:
    from orchestrator import cli_api, cli_ops, cli_state

    cli_ops.attach(cli)
    cli_api.attach(cli)
    cli_state.attach(cli)


_attach_operations()


def main() -> None:
    """Entry point: clear one-line errors instead of tracebacks for expected failures."""
    try:
        cli(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(130)
    except OrchestratorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
