"""PartitionStore: workflow rows and the checkpoint, written together, surviving a reopen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.engine.records import TaskStatus, WorkflowStatus
from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.processor.store import NO_CHECKPOINT, VERSION_KEY, PartitionStore

StoreFactory = Callable[[str], PartitionStore]


def state(workflow_id: str, seq: int = 2, **changes: object) -> WorkflowState:
    """A running workflow with one scheduled task and unicode, nested JSON in it."""
    task = TaskState(
        task_id="fetch",
        ref_name="fetch",
        task_type="http",
        attempt=1,
        status=TaskStatus.SCHEDULED,
        input={"url": "https://example.com/ü", "headers": [{"k": "v"}]},
        scheduled_at=5,
        updated_at=5,
    )
    base = WorkflowState(
        workflow_id=workflow_id,
        name="flow",
        version=1,
        status=WorkflowStatus.RUNNING,
        seq=seq,
        input={"x": [1, 2.5, None, "ÿ"]},
        correlation_id="c",
        definition={"name": "flow", "tasks": [{"name": "http", "taskReferenceName": "fetch"}]},
        created_at=4,
        updated_at=5,
        tasks={"fetch": task},
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores by name under tmp_path and closes every one left open at the end."""
    opened: list[PartitionStore] = []

    def factory(name: str) -> PartitionStore:
        store = PartitionStore(tmp_path / name)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def test_new_store_is_empty_with_checkpoint_minus_one(open_store: StoreFactory) -> None:
    """A fresh store has no workflows and checkpoint -1."""
    store = open_store("p0")
    assert store.checkpoint == NO_CHECKPOINT == -1
    assert store.get("missing") is None
    assert list(store.workflows()) == []


def test_write_then_get_round_trips(open_store: StoreFactory) -> None:
    """A written state reads back equal, tasks and JSON included."""
    store = open_store("p0")
    original = state("w-ü")
    store.write({"w-ü": original}, checkpoint=7)
    assert store.get("w-ü") == original
    assert store.get("w-ü").to_json() == original.to_json()  # type: ignore[union-attr]
    assert store.get("other") is None


def test_checkpoint_moves_with_the_states(open_store: StoreFactory) -> None:
    """Each write stores its states and its checkpoint; later writes replace both."""
    store = open_store("p0")
    store.write({"a": state("a", seq=2)}, checkpoint=3)
    assert (store.checkpoint, store.get("a").seq) == (3, 2)  # type: ignore[union-attr]
    store.write({"a": state("a", seq=5), "b": state("b")}, checkpoint=9)
    assert (store.checkpoint, store.get("a").seq) == (9, 5)  # type: ignore[union-attr]
    assert store.get("b") is not None


def test_checkpoint_moves_even_without_states(open_store: StoreFactory) -> None:
    """A batch whose events changed no stored state still advances the checkpoint."""
    store = open_store("p0")
    store.write({"a": state("a")}, checkpoint=3)
    store.write({}, checkpoint=4)
    assert store.checkpoint == 4
    assert store.get("a") == state("a")


def test_failed_write_changes_neither_states_nor_checkpoint(open_store: StoreFactory) -> None:
    """A write that fails part-way leaves the earlier states and checkpoint as they were."""
    store = open_store("p0")
    store.write({"a": state("a", seq=2)}, checkpoint=3)
    unserialisable = state("c", input={"bad": {1, 2}})
    with pytest.raises(TypeError):
        store.write({"a": state("a", seq=9), "b": state("b"), "c": unserialisable}, checkpoint=10)
    assert store.checkpoint == 3
    assert store.get("a").seq == 2  # type: ignore[union-attr]
    assert store.get("b") is None


def test_reopen_keeps_states_and_checkpoint(tmp_path: Path) -> None:
    """After close and reopen the states and the checkpoint are still there."""
    store = PartitionStore(tmp_path / "p0")
    store.write({"a": state("a"), "b": state("b", seq=4)}, checkpoint=41)
    store.close()
    reopened = PartitionStore(tmp_path / "p0")
    try:
        assert reopened.checkpoint == 41
        assert reopened.get("a") == state("a")
        assert [s.workflow_id for s in reopened.workflows()] == ["a", "b"]
    finally:
        reopened.close()


def test_workflows_lists_every_state_in_key_order(open_store: StoreFactory) -> None:
    """workflows() yields every stored workflow, by id, and no metadata rows."""
    store = open_store("p0")
    store.write({"b": state("b"), "a": state("a")}, checkpoint=1)
    store.write({"c": state("c")}, checkpoint=2)
    assert [s.workflow_id for s in store.workflows()] == ["a", "b", "c"]


def test_digest_equal_for_equal_contents(open_store: StoreFactory) -> None:
    """Stores with the same workflow rows have the same digest, whatever the write order."""
    one, two = open_store("one"), open_store("two")
    one.write({"a": state("a"), "b": state("b")}, checkpoint=5)
    two.write({"b": state("b")}, checkpoint=1)
    two.write({"a": state("a")}, checkpoint=8)
    assert one.digest() == two.digest()


def test_digest_covers_rows_not_checkpoint(open_store: StoreFactory) -> None:
    """The digest compares workflow contents; the checkpoint alone does not change it."""
    store = open_store("p0")
    store.write({"a": state("a")}, checkpoint=5)
    before = store.digest()
    store.write({}, checkpoint=6)
    assert store.digest() == before


@pytest.mark.parametrize(
    "other",
    [
        {"a": state("a", seq=3)},
        {"a": state("a", status=WorkflowStatus.COMPLETED)},
        {"a": state("a", input={"x": "different"})},
        {"a": state("a"), "b": state("b")},
        {"z": state("a")},
    ],
    ids=["seq", "status", "input", "extra-row", "other-key"],
)
def test_digest_differs_for_different_contents(
    open_store: StoreFactory, other: dict[str, WorkflowState]
) -> None:
    """Any difference in the stored rows changes the digest."""
    base, changed = open_store("base"), open_store("changed")
    base.write({"a": state("a")}, checkpoint=1)
    changed.write(other, checkpoint=1)
    assert base.digest() != changed.digest()


def test_empty_stores_share_a_digest(open_store: StoreFactory) -> None:
    """Two empty stores have the same digest, different from a store with a row."""
    one, two, three = open_store("one"), open_store("two"), open_store("three")
    three.write({"a": state("a")}, checkpoint=0)
    assert one.digest() == two.digest() != three.digest()


def test_other_state_version_is_dropped_for_a_rebuild(tmp_path: Path) -> None:
    """A store of another state layout is never misread: it reopens empty, to refold the log."""
    store = PartitionStore(tmp_path / "p0")
    store.write({"a": state("a")}, checkpoint=1)
    store._db[VERSION_KEY] = b"999"
    store.close()
    reopened = PartitionStore(tmp_path / "p0")
    try:
        assert (reopened.checkpoint, reopened.get("a")) == (NO_CHECKPOINT, None)
    finally:
        reopened.close()


def test_destroy_removes_the_database(tmp_path: Path) -> None:
    """destroy deletes the partition's files; a new store there starts empty."""
    store = PartitionStore(tmp_path / "p0")
    store.write({"a": state("a")}, checkpoint=3)
    store.close()
    PartitionStore.destroy(tmp_path / "p0")
    fresh = PartitionStore(tmp_path / "p0")
    try:
        assert (fresh.checkpoint, fresh.get("a")) == (NO_CHECKPOINT, None)
    finally:
        fresh.close()
