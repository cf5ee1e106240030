"""State commands: ``backup`` and ``restore`` of the processor's partition stores.

Attached to the ``orchestrator`` group like :mod:`orchestrator.cli_ops`. Neither needs the
broker: a backup reads the stores on disk, and a restored state catches up from the log when a
processor starts on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from orchestrator.config import Settings
from orchestrator.processor import backup as backups

__all__ = ["COMMANDS", "attach", "backup", "restore"]

_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The processor's state directory (default: the global --state-dir, ORCH_STATE_DIR).",
)


def _settings(ctx: click.Context, **extra: Any) -> Settings:
    """Settings from the main group's overrides (``ctx.obj``) and this command's options."""
    overrides = {k: v for k, v in {**(ctx.obj or {}), **extra}.items() if v is not None}
    return Settings(**overrides)


@click.command()
@_state_dir_option
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A new (or empty) directory to write the backup to.",
)
@click.pass_context
def backup(ctx: click.Context, state_dir: Path | None, out: Path) -> None:
    """Copy every partition store and a manifest (checkpoints, prefix, layout) to OUT.

    Safe while a processor runs on the state directory: each store is read through a RocksDB
    secondary instance, which takes no lock, and copied as of one consistent checkpoint.
    """
    settings = _settings(ctx, state_dir=state_dir)
    manifest = backups.backup(settings, out)
    for part in manifest.partitions:
        click.echo(
            f"partition {part.partition}: checkpoint {part.checkpoint}, "
            f"{part.workflows} workflows, {part.keys} keys"
        )
    click.echo(
        f"backup of {len(manifest.partitions)} partition stores (topic prefix "
        f"{manifest.topic_prefix!r}) written to {out}"
    )


@click.command()
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="The backup directory (what `orchestrator backup --out` wrote).",
)
@_state_dir_option
@click.option("--force", is_flag=True, help="Replace stores already in the state directory.")
@click.pass_context
def restore(ctx: click.Context, source: Path, state_dir: Path | None, force: bool) -> None:
    """Put a backup's partition stores in place under the state directory.

    Refuses a state directory that already holds stores unless --force (stop its processor
    first), and a backup of another topic prefix or state layout. A processor started on the
    restored stores replays the events after each store's checkpoint, then carries on.
    """
    settings = _settings(ctx, state_dir=state_dir)
    manifest = backups.restore(settings, source, force=force)
    checkpoints = ", ".join(f"p{p.partition}@{p.checkpoint}" for p in manifest.partitions)
    click.echo(
        f"restored {len(manifest.partitions)} partition stores taken {manifest.created_at} "
        f"into {backups.store_root(settings)} (checkpoints {checkpoints})"
    )


COMMANDS: tuple[click.Command, ...] = (backup, restore)
"""Every state command, for ``cli.add_command``."""


def attach(group: click.Group) -> None:
    """Add every state command to ``group`` (the main ``orchestrator`` group)."""
    for command in COMMANDS:
        group.add_command(command)
