"""Operator commands: ``verify``, ``replay`` and ``dlq``, attached to the ``orchestrator`` group.

Each command reads the global options from ``ctx.obj`` (the dict of Settings overrides the main
group stores), so ``cli.add_command(command)`` for each of :data:`COMMANDS` is all it takes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from orchestrator import audit
from orchestrator import dlq as dead_letters
from orchestrator import replay as slices
from orchestrator.config import Settings
from orchestrator.engine.records import as_json
from orchestrator.log.kafka import check_reachable

__all__ = ["COMMANDS", "attach", "dlq", "replay", "verify"]


def _settings(ctx: click.Context) -> Settings:
    """Settings from the main group's overrides (``ctx.obj``), as ``cli._settings`` builds them."""
    overrides = {k: v for k, v in (ctx.obj or {}).items() if v is not None}
    settings = Settings(**overrides)
    check_reachable(settings)
    return settings


def _dump(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


@click.command()
@click.option("--json", "as_json_output", is_flag=True, help="The report as JSON.")
@click.option("--show", type=int, default=100, show_default=True, help="Violations to list.")
@click.pass_context
def verify(ctx: click.Context, as_json_output: bool, show: int) -> None:
    """Check every workflow in the events topic against the state machine's rules.

    Exits 1 if any event breaks one.
    """
    report = audit.verify_log(_settings(ctx))
    if as_json_output:
        click.echo(_dump(report.to_json()))
    else:
        click.echo(
            f"checked {report.workflows} workflows, {report.events} events "
            f"in {report.topic} ({report.partitions} partitions)"
        )
        click.echo(f"violations: {len(report.violations)}")
        for violation in report.violations[:show]:
            click.echo(f"  {violation}")
        if len(report.violations) > show:
            click.echo(f"  ... and {len(report.violations) - show} more (--show N)")
    if not report.ok:
        sys.exit(1)


def _epoch_ms(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return slices.parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("replay")
@click.option(
    "--from-time",
    "from_time",
    required=True,
    callback=_epoch_ms,
    help="Copy events with at >= T: epoch ms or ISO 8601 (2026-11-21T18:00:00Z).",
)
@click.option("--to-topic", required=True, help="A new topic to copy the events to.")
@click.option(
    "--to-state-dir",
    type=click.Path(path_type=Path),
    help="Also fold the copied events into fresh partition stores here.",
)
@click.pass_context
def replay(ctx: click.Context, from_time: int, to_topic: str, to_state_dir: Path | None) -> None:
    """Copy the events from a moment on to a new topic, to build a read model from that slice."""
    settings = _settings(ctx)
    sliced = slices.replay_slice(settings, from_time, to_topic)
    click.echo(f"copied {sliced.copied} of {sliced.read} events (at >= {from_time}) to {to_topic}")
    if sliced.partial_workflows:
        click.echo(
            f"note: {sliced.partial_workflows} workflows began before {from_time}; their events "
            "are copied, but cannot fold without their start"
        )
    if to_state_dir is not None:
        for result in slices.fold_topic(settings, to_topic, to_state_dir):
            click.echo(
                f"partition {result.partition}: {result.events} events folded into "
                f"{to_state_dir} in {result.seconds:.2f} s"
            )


@click.group()
def dlq() -> None:
    """Inspect and re-drive dead letters."""


@dlq.command("list")
@click.option("--json", "as_json_output", is_flag=True, help="One JSON object per letter.")
@click.option("--limit", type=click.IntRange(min=1), help="Show the oldest N letters only.")
@click.pass_context
def dlq_list(ctx: click.Context, as_json_output: bool, limit: int | None) -> None:
    """List dead letters, oldest first: where each came from, why, and if it was replayed."""
    letters = dead_letters.list_dead_letters(_settings(ctx), limit)
    if as_json_output:
        for stored in letters:
            entry = {
                **as_json(stored.letter),
                "partition": stored.partition,
                "offset": stored.offset,
                "payload_size": len(stored.letter.payload or b""),
                "replayed": stored.replayed,
            }
            click.echo(orjson.dumps(entry).decode())
        return
    click.echo(f"{'LETTER':<10} {'SOURCE':<40} {'KEY':<24} {'SIZE':>6} {'REPLAYED':<8} REASON")
    for stored in letters:
        letter = stored.letter
        source = (
            f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
            if letter.source_partition >= 0
            else f"{letter.source_topic} (exhausted)"  # the processor gave up on the task
        )
        click.echo(
            f"{stored.location:<10} {source:<40} {letter.key or '-':<24} "
            f"{len(letter.payload or b''):>6} {'yes' if stored.replayed else 'no':<8} "
            f"{letter.reason}"
        )
    click.echo(f"{len(letters)} dead letters")


def _locations(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[int, int]]:
    try:
        return [dead_letters.parse_location(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@dlq.command("replay")
@click.option("--all", "replay_all", is_flag=True, help="Every dead letter.")
@click.option(
    "--offset",
    "locations",
    multiple=True,
    callback=_locations,
    metavar="P:O",
    help="The letter at PARTITION:OFFSET of the dead-letters topic (repeatable).",
)
@click.option("--force", is_flag=True, help="Replay letters that were replayed before, too.")
@click.pass_context
def dlq_replay(
    ctx: click.Context, replay_all: bool, locations: list[tuple[int, int]], force: bool
) -> None:
    """Re-drive dead letters: source bytes to requests/results, RetryWorkflow for task topics.

    Exits 1 if a selected letter is missing or cannot be re-driven (not for earlier replays).
    """
    if replay_all == bool(locations):
        raise click.UsageError("give either --all or one or more --offset P:O")
    outcomes = dead_letters.redrive(_settings(ctx), None if replay_all else locations, force=force)
    for outcome in outcomes:
        click.echo(f"{outcome.location:<10} {outcome.status:<16} {outcome.detail}")
    replayed = sum(outcome.replayed for outcome in outcomes)
    click.echo(f"replayed {replayed} of {len(outcomes)} dead letters")
    failed = (dead_letters.Status.MISSING, dead_letters.Status.UNROUTABLE)
    if any(outcome.status in failed for outcome in outcomes):
        sys.exit(1)


COMMANDS: tuple[click.Command, ...] = (verify, replay, dlq)
"""Every operator command, for ``cli.add_command``."""


def attach(group: click.Group) -> None:
    """Add every operator command to ``group`` (the main ``orchestrator`` group)."""
    for command in COMMANDS:
        group.add_command(command)
