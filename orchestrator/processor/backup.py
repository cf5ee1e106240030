"""Backup and restore of the processor's partition stores.

A backup is a directory holding one RocksDB per partition store (``p0000``, ``p0001``...) and
``manifest.json``: the topic prefix, the state layout version, when it was taken, and each
partition's checkpoint (the offset in ``events`` of the last event its rows reflect). A
processor started on a restored state directory catches up from each checkpoint to the end of
the log, as it does after any restart, so a backup only shortens recovery: the log stays the
source of truth.

Taking a backup works while a processor runs. RocksDB lets one process hold a database; the
backup opens each store as a *secondary* instance instead, which takes no lock and sees the
primary's state as of its last catch-up, including writes still only in the write-ahead log.
Its rows are copied into a fresh database. The processor writes rows and checkpoint in one
atomic batch, so the copy is always a consistent prefix of the log. (A RocksDB checkpoint
needs the primary's own handle, which lives in the processor's process; one taken through a
secondary instance misses what is only in the write-ahead log.)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rocksdict import AccessType, Options, Rdict, WriteBatch

from orchestrator.config import Settings
from orchestrator.engine.state import STATE_VERSION
from orchestrator.errors import BackupError
from orchestrator.processor.store import (
    CHECKPOINT_KEY,
    NO_CHECKPOINT,
    VERSION_KEY,
    WORKFLOW_PREFIX,
    partition_path,
)
from orchestrator.telemetry import get_logger

__all__ = ["FORMAT", "MANIFEST_NAME", "Manifest", "PartitionBackup", "backup", "restore"]

MANIFEST_NAME = "manifest.json"
FORMAT = 1
COPY_BATCH = 10_000  # rows per write batch while copying a store

_STORE_NAME = re.compile(r"^p(\d{4})$")

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PartitionBackup:
    """One partition store in a backup."""

    partition: int
    checkpoint: int  # offset in events of the last event reflected; -1 for none
    workflows: int
    keys: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds, written as ``manifest.json`` once every store is copied."""

    topic_prefix: str
    state_version: int
    created_at: str
    source: str
    partitions: tuple[PartitionBackup, ...]
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON."""
        return {
            "format": self.format,
            "topic_prefix": self.topic_prefix,
            "state_version": self.state_version,
            "created_at": self.created_at,
            "source": self.source,
            "partitions": [
                {"partition": p.partition, "checkpoint": p.checkpoint, "workflows": p.workflows}
                | {"keys": p.keys}
                for p in self.partitions
            ],
        }

    @classmethod
    def read(cls, backup_dir: Path) -> Manifest:
        """The manifest of the backup in ``backup_dir``; :class:`BackupError` if unreadable."""
        path = backup_dir / MANIFEST_NAME
        try:
            data = orjson.loads(path.read_bytes())
            if data["format"] != FORMAT:
                raise BackupError(f"{path}: backup format {data['format']}, expected {FORMAT}")
            return cls(
                topic_prefix=str(data["topic_prefix"]),
                state_version=int(data["state_version"]),
                created_at=str(data["created_at"]),
                source=str(data["source"]),
                partitions=tuple(
                    PartitionBackup(
                        int(p["partition"]),
                        int(p["checkpoint"]),
                        int(p["workflows"]),
                        int(p["keys"]),
                    )
                    for p in data["partitions"]
                ),
            )
        except OSError as exc:
            raise BackupError(
                f"{path}: cannot read the manifest ({exc.strerror}); is {backup_dir} a backup?"
            ) from exc
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"{path}: not a valid backup manifest: {exc!r}") from exc


def store_root(settings: Settings) -> Path:
    """The directory holding the partition stores of ``settings``' topic prefix."""
    return partition_path(settings.state_dir, settings.topic_prefix, 0).parent


def backup(settings: Settings, out: Path) -> Manifest:
    """Copy every partition store under the state directory into ``out``, a new directory.

    Works while a processor runs on the stores. The backup appears under ``out`` only once
    complete (it is assembled next to it and renamed), so a failed run leaves nothing behind.
    """
    root = store_root(settings)
    stores = _stores(root)
    if not stores:
        raise BackupError(_no_stores_message(settings, root))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not an empty directory; choose a new --out")
    with _staging(out.parent / f".{out.name}.partial-{os.getpid()}") as work:
        copied = tuple(_copy_store(number, path, work / path.name) for number, path in stores)
        manifest = Manifest(
            topic_prefix=settings.topic_prefix,
            state_version=STATE_VERSION,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            source=str(root.resolve()),
            partitions=copied,
        )
        (work / MANIFEST_NAME).write_bytes(
            orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2)
        )
        if out.exists():
            out.rmdir()
        work.rename(out)
    return manifest


def restore(settings: Settings, source: Path, *, force: bool = False) -> Manifest:
    """Put the partition stores of the backup in ``source`` in place under the state directory.

    Refuses a backup of another topic prefix or state layout, and a state directory that
    already holds stores of this prefix unless ``force`` (then those stores are replaced,
    after checking no process has them open). The stores move into place only once all are
    copied and checked.
    """
    manifest = Manifest.read(source)
    _check_compatible(manifest, settings, source)
    root = store_root(settings)
    if root.exists() and any(root.iterdir()):
        if not force:
            raise BackupError(
                f"{root} already holds partition stores; restore replaces them only with "
                "--force (stop every processor using this state directory first)"
            )
        _check_unused(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with _staging(root.parent / f".{root.name}.restore-{os.getpid()}") as staging:
        for part in manifest.partitions:
            name = _store_name(part.partition)
            shutil.copytree(source / name, staging / name)
            _check_copy(staging / name, part)
        _swap_in(staging, root)
    log.info("state restored", backup=str(source), state_dir=str(root), created=manifest.created_at)
    return manifest


# Copying ---------------------------------------------------------------------------------------


def _stores(root: Path) -> list[tuple[int, Path]]:
    """The partition stores under ``root``, by partition number."""
    if not root.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in root.iterdir()
        if path.is_dir() and (match := _STORE_NAME.match(path.name))
    ]
    return sorted(found)


def _store_name(partition: int) -> str:
    return f"p{partition:04d}"


def _copy_store(number: int, source: Path, target: Path) -> PartitionBackup:
    """Copy one store, as its secondary instance sees it now, into a new database."""
    with tempfile.TemporaryDirectory(prefix="orch-backup-") as scratch:
        options = Options(raw_mode=True)
        options.set_max_open_files(-1)  # a secondary keeps every file it reads open
        try:
            db = Rdict(str(source), options, access_type=AccessType.secondary(scratch))
            db.try_catch_up_with_primary()
        except Exception as exc:
            raise BackupError(f"cannot read the state store {source}: {exc}") from exc
        try:
            version = db.get(VERSION_KEY)
            if version is not None and int(version) != STATE_VERSION:
                raise BackupError(
                    f"{source} holds state layout v{int(version)}, this release writes "
                    f"v{STATE_VERSION}: start a processor on it (it rebuilds the store), then "
                    "back it up"
                )
            raw = db.get(CHECKPOINT_KEY)
            checkpoint = NO_CHECKPOINT if raw is None else int(raw)
            keys, workflows = _copy_rows(db, target)
        finally:
            db.close()
    log.info("partition store copied", partition=number, checkpoint=checkpoint, keys=keys)
    return PartitionBackup(number, checkpoint, workflows, keys)


def _copy_rows(source: Rdict, target_path: Path) -> tuple[int, int]:
    """Every key of ``source`` into a new database at ``target_path``; (keys, workflows)."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    target = Rdict(str(target_path), options)
    keys = workflows = 0
    try:
        batch = WriteBatch(raw_mode=True)
        for key, value in source.items():
            batch.put(key, value)
            keys += 1
            workflows += isinstance(key, bytes) and key.startswith(WORKFLOW_PREFIX)
            if len(batch) >= COPY_BATCH:
                target.write(batch)
                batch = WriteBatch(raw_mode=True)
        target.write(batch)
        target.flush()
    finally:
        target.close()
    return keys, workflows


# Restoring -------------------------------------------------------------------------------------


def _check_compatible(manifest: Manifest, settings: Settings, source: Path) -> None:
    if manifest.topic_prefix != settings.topic_prefix:
        raise BackupError(
            f"{source} is a backup of topic prefix {manifest.topic_prefix!r}, not "
            f"{settings.topic_prefix!r}: restore it with --topic-prefix {manifest.topic_prefix} "
            "(or ORCH_TOPIC_PREFIX), the prefix of the topics it reflects"
        )
    if manifest.state_version != STATE_VERSION:
        raise BackupError(
            f"{source} holds state layout v{manifest.state_version}, this release reads "
            f"v{STATE_VERSION}: restore it with the release that wrote it, or run "
            "`orchestrator rebuild` to fold the state from the log instead"
        )
    for part in manifest.partitions:
        if part.partition >= settings.partitions:
            raise BackupError(
                f"{source} has partition {part.partition}, but the topics have "
                f"{settings.partitions} partitions (--partitions / ORCH_PARTITIONS)"
            )
        if not (source / _store_name(part.partition)).is_dir():
            raise BackupError(f"{source} lacks {_store_name(part.partition)}, which it lists")


def _check_copy(path: Path, part: PartitionBackup) -> None:
    """The copied store opens and holds the checkpoint its manifest entry names."""
    try:
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only(False))
    except Exception as exc:
        raise BackupError(f"the backup's store for partition {part.partition}: {exc}") from exc
    try:
        raw = db.get(CHECKPOINT_KEY)
    finally:
        db.close()
    checkpoint = NO_CHECKPOINT if raw is None else int(raw)
    if checkpoint != part.checkpoint:
        raise BackupError(
            f"the backup's store for partition {part.partition} is at checkpoint {checkpoint}, "
            f"its manifest says {part.checkpoint}: the backup is damaged"
        )


def _check_unused(root: Path) -> None:
    """Raise unless every store under ``root`` can be locked, i.e. no processor holds one."""
    for _, path in _stores(root):
        try:
            Rdict(str(path), Options(raw_mode=True)).close()
        except Exception as exc:
            raise BackupError(
                f"cannot take over {path} ({exc}): stop the processor using it, then restore"
            ) from exc


def _swap_in(staging: Path, root: Path) -> None:
    """Replace ``root`` with ``staging`` by renames, so no reader sees a half-restored root."""
    if not root.exists():
        staging.rename(root)
        return
    replaced = root.parent / f".{root.name}.replaced-{os.getpid()}"
    root.rename(replaced)
    staging.rename(root)
    shutil.rmtree(replaced)


@contextlib.contextmanager
def _staging(path: Path) -> Iterator[Path]:
    """A fresh directory at ``path`` that is removed again unless the block moved it away."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _no_stores_message(settings: Settings, root: Path) -> str:
    others = (
        sorted(
            p.name
            for p in settings.state_dir.iterdir()
            if p.is_dir() and p != root and not p.name.startswith(".")
        )
        if settings.state_dir.is_dir()
        else []
    )
    hint = f"; the state directory holds stores of {', '.join(others)}" if others else ""
    return (
        f"no partition stores under {root} (state directory {settings.state_dir}, topic "
        f"prefix {settings.topic_prefix!r}){hint}: check --state-dir and --topic-prefix"
    )
