"""Backup of a running processor's state, restore, and catch-up from the backup's checkpoints."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.evolve import fold
from orchestrator.engine.records import TERMINAL_EVENTS, Event
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import BackupError
from orchestrator.log.codec import CODEC
from orchestrator.log.scan import read_messages
from orchestrator.log.topics import Topics
from orchestrator.processor.backup import backup, restore
from orchestrator.processor.loop import Processor
from orchestrator.processor.rebuild import digest, rebuild
from orchestrator.processor.store import PartitionStore, partition_path
from orchestrator.worker import Worker
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

STEPS = 3
CHAIN = parse_definition(
    {
        "name": "backup_chain",
        "version": 1,
        "tasks": [
            {
                "name": "bump",
                "taskReferenceName": f"step{i}",
                "inputParameters": {
                    "v": "${workflow.input.v}" if i == 1 else f"${{step{i - 1}.output.v}}"
                },
            }
            for i in range(1, STEPS + 1)
        ],
        "outputParameters": {"v": f"${{step{STEPS}.output.v}}"},
    }
)


@pytest.fixture
def bump_worker(topics: Settings) -> Iterator[None]:
    """A worker whose bump task returns v + 1 after 20 ms, in a thread."""
    worker = Worker(name="bump")

    @worker.task("bump")
    def bump(task_input: dict[str, int]) -> dict[str, int]:
        time.sleep(0.02)
        return {"v": task_input["v"] + 1}

    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(topics,), kwargs={"concurrency": 8, "stop": stop}, daemon=True
    )
    thread.start()
    yield
    stop.set()
    thread.join(30)


def read_log(settings: Settings) -> list[tuple[int, int, Event]]:
    """Every event of the log with its partition and offset."""
    topic = Topics(settings.topic_prefix).events
    return [
        (message.partition(), message.offset(), CODEC.decode(message.value()))
        for message in read_messages(settings, topic, range(settings.partitions))
    ]


def finished(settings: Settings) -> int:
    """How many workflows have a terminal event in the log."""
    return sum(isinstance(event, TERMINAL_EVENTS) for _, _, event in read_log(settings))


def start_batch(client: Client, prefix: str, count: int) -> list[str]:
    """Start ``count`` chains named ``<prefix>-<n>`` with input v = n."""
    ids = [f"{prefix}-{n:02d}" for n in range(count)]
    for n, workflow_id in enumerate(ids):
        client.start("backup_chain", input={"v": n}, workflow_id=workflow_id)
    return ids


def stored_states(settings: Settings) -> dict[str, WorkflowState]:
    """Every workflow state in the partition stores of ``settings``."""
    states: dict[str, WorkflowState] = {}
    for number in range(settings.partitions):
        store = PartitionStore(partition_path(settings.state_dir, settings.topic_prefix, number))
        try:
            states.update((state.workflow_id, state) for state in store.workflows())
        finally:
            store.close()
    return states


def run_until_assigned(settings: Settings) -> dict[int, dict[str, object]]:
    """Run a processor until it has caught up on every partition; its "partition assigned" logs."""
    processor = Processor(settings, "restored")
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    with capture_logs() as logs:
        thread.start()
        try:
            assert processor.ready.wait(30), "the processor got no partitions within 30 s"
            assigned = assert_eventually(
                lambda: len(found := _assigned(logs)) == settings.partitions and found,
                timeout=30,
            )
        finally:
            stop.set()
            thread.join(30)
    return assigned


def _assigned(logs: list[dict[str, object]]) -> dict[int, dict[str, object]]:
    return {
        int(entry["partition"]): entry  # type: ignore[call-overload]
        for entry in logs
        if entry["event"] == "partition assigned"
    }


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_backup_of_a_running_processor_restores_and_catches_up_from_its_checkpoints(
    topics: Settings, client: Client, processor_processes, bump_worker: None, tmp_path: Path
) -> None:
    """Backup mid-run, more work, wipe, restore: the state equals the log's fold again."""
    client.register([CHAIN])
    primary = processor_processes.start("primary")
    first = start_batch(client, "a", 20)
    assert_eventually(lambda: finished(topics) == 20, timeout=90, interval=0.5)
    in_flight = start_batch(client, "b", 20)
    manifest = backup(topics, tmp_path / "backup")  # while the b-chains run
    assert_eventually(lambda: finished(topics) == 40, timeout=90, interval=0.5)
    newer = start_batch(client, "c", 20)
    assert_eventually(lambda: finished(topics) == 60, timeout=90, interval=0.5)
    processor_processes.kill(primary, sig=signal.SIGTERM)

    with pytest.raises(BackupError, match="only with --force"):
        restore(topics, tmp_path / "backup")
    shutil.rmtree(topics.state_dir)
    restore(topics, tmp_path / "backup")
    assigned = run_until_assigned(topics)

    log = read_log(topics)
    checkpoints = {part.partition: part.checkpoint for part in manifest.partitions}
    assert sorted(checkpoints) == list(range(topics.partitions))
    for number in range(topics.partitions):
        after = sum(1 for p, offset, _ in log if p == number and offset > checkpoints[number])
        assert assigned[number]["replayed"] == after, f"partition {number}"
    replayed = sum(int(entry["replayed"]) for entry in assigned.values())  # type: ignore[call-overload]
    assert 0 < replayed < len(log), "catch-up starts at the backup's checkpoints, not at 0"

    by_workflow: dict[str, list[Event]] = {}
    for _, _, event in log:
        by_workflow.setdefault(event.workflow_id, []).append(event)
    folded = {wid: fold(events).to_json() for wid, events in by_workflow.items()}  # type: ignore[arg-type]
    restored = stored_states(topics)
    assert {wid: state.to_json() for wid, state in restored.items()} == folded
    assert set(restored) == {*first, *in_flight, *newer}
    assert all(restored[wid].status == "COMPLETED" for wid in newer)
    assert restored["c-07"].output == {"v": 7 + STEPS}

    rebuilt = topics.model_copy(update={"state_dir": tmp_path / "rebuilt"})
    rebuild(rebuilt)
    assert digest(topics) == digest(rebuilt)
