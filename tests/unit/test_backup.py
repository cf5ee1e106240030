"""Backup and restore of partition stores: consistent copies of live stores, guarded restores."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import Settings
from orchestrator.engine.state import STATE_VERSION
from orchestrator.errors import BackupError
from orchestrator.processor.backup import MANIFEST_NAME, Manifest, backup, restore, store_root
from orchestrator.processor.rebuild import digest
from orchestrator.processor.store import PartitionStore, partition_path
from tests.helpers import assert_eventually
from tests.unit.test_store import state


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a state directory under tmp_path, six partitions, prefix ``orch.``."""
    return Settings(state_dir=tmp_path / "state", topic_prefix="orch.", partitions=6)


def fill(settings: Settings, partitions: dict[int, int]) -> None:
    """Write three workflows into each partition's store, at the checkpoint given."""
    for number, checkpoint in partitions.items():
        store = PartitionStore(partition_path(settings.state_dir, settings.topic_prefix, number))
        try:
            store.write({f"w{number}-{i}": state(f"w{number}-{i}") for i in range(3)}, checkpoint)
        finally:
            store.close()


def elsewhere(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """``settings`` with another state directory."""
    return settings.model_copy(update={"state_dir": tmp_path / name})


@pytest.fixture
def open_stores(settings: Settings) -> Iterator[dict[int, PartitionStore]]:
    """Partitions 0 and 3 filled and held open, as a running processor holds them."""
    fill(settings, {0: 11, 3: 7})
    stores = {
        n: PartitionStore(partition_path(settings.state_dir, settings.topic_prefix, n))
        for n in (0, 3)
    }
    yield stores
    for store in stores.values():
        store.close()


def test_backup_of_open_stores_restores_the_same_state(
    settings: Settings, open_stores: dict[int, PartitionStore], tmp_path: Path
) -> None:
    """Stores held open are copied as they are; the restore holds equal rows and checkpoints."""
    open_stores[3].write({"late": state("late")}, checkpoint=8)  # only in the write-ahead log
    manifest = backup(settings, tmp_path / "backup")
    assert [(p.partition, p.checkpoint, p.workflows) for p in manifest.partitions] == [
        (0, 11, 3),
        (3, 8, 4),
    ]
    assert (manifest.topic_prefix, manifest.state_version) == ("orch.", STATE_VERSION)
    assert Manifest.read(tmp_path / "backup") == manifest

    target = elsewhere(settings, tmp_path, "restored")
    restore(target, tmp_path / "backup")
    expected = {n: store.digest() for n, store in open_stores.items()}
    assert digest(target) == expected
    for number, store in open_stores.items():
        path = partition_path(target.state_dir, target.topic_prefix, number)
        restored = PartitionStore(path)
        try:
            assert restored.checkpoint == store.checkpoint
        finally:
            restored.close()


WRITER = """
import sys
from pathlib import Path
from tests.unit.test_store import state
from orchestrator.processor.store import PartitionStore

store = PartitionStore(Path(sys.argv[1]))
for n in range(1, 1_000_000):
    store.write({f"w{i}": state(f"w{i}", seq=n) for i in range(20)}, checkpoint=n)
    if n == 50:
        Path(sys.argv[2]).touch()
"""


def test_backup_while_another_process_writes_is_a_consistent_prefix(
    settings: Settings, tmp_path: Path
) -> None:
    """Against a store another process holds and rewrites, each copy's rows match its checkpoint."""
    path = partition_path(settings.state_dir, settings.topic_prefix, 2)
    ready = tmp_path / "ready"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(path), str(ready)],
        cwd=Path(__file__).parents[2],
    )
    try:
        assert_eventually(ready.exists, timeout=30, message="the writer did not start")
        checkpoints = []
        for attempt in range(3):
            out = tmp_path / f"backup-{attempt}"
            [part] = backup(settings, out).partitions
            copy = PartitionStore(out / "p0002")
            try:
                seqs = {s.seq for s in copy.workflows()}
                assert seqs == {copy.checkpoint} == {part.checkpoint}, "a torn copy"
            finally:
                copy.close()
            checkpoints.append(part.checkpoint)
        assert checkpoints == sorted(checkpoints)
        assert checkpoints[0] >= 50
        assert writer.poll() is None, "the writer should still be running"
    finally:
        writer.kill()
        writer.wait(10)


def test_backup_refuses_a_non_empty_target_and_a_state_dir_without_stores(
    settings: Settings, tmp_path: Path
) -> None:
    """Errors say what to do: pick a new --out, check --state-dir and --topic-prefix."""
    (settings.state_dir / "prod").mkdir(parents=True)  # stores of another prefix
    with pytest.raises(BackupError, match=r"no partition stores under .*state/orch .*prod"):
        backup(settings, tmp_path / "backup")
    fill(settings, {1: 4})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").touch()
    with pytest.raises(BackupError, match="not an empty directory"):
        backup(settings, tmp_path / "busy")
    assert not list(tmp_path.glob(".*partial*")), "a failed backup leaves nothing behind"


def test_restore_into_a_non_empty_state_dir_needs_force(settings: Settings, tmp_path: Path) -> None:
    """Existing stores stay unless --force, which replaces them all."""
    fill(settings, {0: 5, 1: 6})
    backup(settings, tmp_path / "backup")
    fill(settings, {0: 9, 4: 2})  # newer and extra state since the backup
    with pytest.raises(BackupError, match="only with --force"):
        restore(settings, tmp_path / "backup")
    restore(settings, tmp_path / "backup", force=True)
    root = store_root(settings)
    assert sorted(p.name for p in root.iterdir()) == ["p0000", "p0001"]
    store = PartitionStore(root / "p0000")
    try:
        assert store.checkpoint == 5
    finally:
        store.close()
    assert sorted(p.name for p in settings.state_dir.iterdir()) == ["orch"]


def test_restore_refuses_stores_a_process_holds(
    settings: Settings, open_stores: dict[int, PartitionStore], tmp_path: Path
) -> None:
    """Even with --force, a store that is open (a running processor) is not replaced."""
    backup(settings, tmp_path / "backup")
    with pytest.raises(BackupError, match="stop the processor using it"):
        restore(settings, tmp_path / "backup", force=True)
    assert open_stores[0].checkpoint == 11


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"topic_prefix": "other."}, "backup of topic prefix 'other.', not 'orch.'"),
        ({"state_version": STATE_VERSION + 1}, f"layout v{STATE_VERSION + 1}"),
        ({"format": 99}, "backup format 99"),
        ({"partitions": [{"partition": 9, "checkpoint": 1, "workflows": 0, "keys": 0}]}, "9"),
        ({"partitions": [{"partition": 5, "checkpoint": 1, "workflows": 0, "keys": 0}]}, "lacks"),
        ({"partitions": [{"partition": 1, "checkpoint": 3, "workflows": 0, "keys": 0}]}, "damaged"),
        ({"partitions": "none"}, "not a valid backup manifest"),
    ],
)
def test_restore_validates_the_manifest(
    settings: Settings, tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    """Another prefix, layout or format, unknown partitions and a damaged copy are refused."""
    fill(settings, {1: 4})
    backup(settings, tmp_path / "backup")
    manifest_path = tmp_path / "backup" / MANIFEST_NAME
    manifest_path.write_bytes(orjson.dumps({**orjson.loads(manifest_path.read_bytes()), **change}))
    target = elsewhere(settings, tmp_path, "target")
    with pytest.raises(BackupError, match=problem):
        restore(target, tmp_path / "backup")
    assert not store_root(target).exists(), "a refused restore writes nothing"


def test_restore_of_a_directory_without_manifest_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    """Pointing --from at something else is a clear error."""
    with pytest.raises(BackupError, match=r"is .* a backup"):
        restore(settings, tmp_path)


def test_backup_and_restore_commands(settings: Settings, tmp_path: Path) -> None:
    """The CLI prints each partition's checkpoint and refuses a second restore without --force."""
    fill(settings, {2: 12})
    runner = CliRunner()
    state_dir, out = str(settings.state_dir), str(tmp_path / "backup")
    done = runner.invoke(cli, ["backup", "--state-dir", state_dir, "--out", out])
    assert done.exit_code == 0, done.output
    assert "partition 2: checkpoint 12, 3 workflows" in done.output
    target = str(tmp_path / "restored")
    done = runner.invoke(cli, ["restore", "--from", out, "--state-dir", target])
    assert done.exit_code == 0, done.output
    assert "p2@12" in done.output
    again = runner.invoke(cli, ["restore", "--from", out, "--state-dir", target])
    assert isinstance(again.exception, BackupError)
