"""Auditing a live log: `verify`, `replay` of a time slice, and the state as of an event."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from orchestrator import cli_ops
from orchestrator.audit import history_at
from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import (
    Event,
    ResultStatus,
    TaskCompleted,
    TaskResult,
    TaskScheduled,
)
from orchestrator.errors import TopicLayoutError, WorkflowError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_producer, produce_and_wait
from orchestrator.log.partitioning import partition_for
from orchestrator.log.reader import read_events
from orchestrator.log.scan import read_messages
from orchestrator.log.topics import Topics
from orchestrator.processor.loop import Processor
from orchestrator.processor.store import PartitionStore, partition_path
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

ONE_TASK = parse_definition(
    {"name": "one", "tasks": [{"name": "solo", "taskReferenceName": "solo"}]}
)


def invoke(settings: Settings, command: click.Command, *args: str) -> Result:
    """Run an operator command with the test's settings as the main group's overrides."""
    overrides = {
        "bootstrap": settings.bootstrap,
        "topic_prefix": settings.topic_prefix,
        "partitions": settings.partitions,
        "state_dir": settings.state_dir,
    }
    return CliRunner().invoke(command, list(args), obj=overrides, catch_exceptions=False)


def schedule(client: Client, workflow_ids: list[str]) -> None:
    """Start one-task workflows and wait until each task is scheduled."""
    for workflow_id in workflow_ids:
        client.start("one", input={"id": workflow_id}, workflow_id=workflow_id)
    for workflow_id in workflow_ids:
        assert_eventually(
            lambda w=workflow_id: any(isinstance(e, TaskScheduled) for e in client.history(w)),
            timeout=30,
            message=f"{workflow_id} was not scheduled",
        )


def complete(client: Client, settings: Settings, workflow_ids: list[str]) -> None:
    """Complete each scheduled task with a result; wait until the workflows finish."""
    producer = make_producer(settings)
    for workflow_id in workflow_ids:
        result = TaskResult(
            workflow_id=workflow_id,
            task_id="solo",
            attempt=1,
            status=ResultStatus.COMPLETED,
            output={"done": workflow_id},
        )
        produce_and_wait(
            producer,
            Topics(settings.topic_prefix).results,
            workflow_id,
            CODEC.encode(result),
            partition=partition_for(workflow_id, settings.partitions),
        )
    for workflow_id in workflow_ids:
        assert client.wait(workflow_id, timeout=30).status == "COMPLETED"


def run_workflows(client: Client, settings: Settings, workflow_ids: list[str]) -> None:
    """Start one-task workflows, complete each task with a result, wait until they finish."""
    schedule(client, workflow_ids)
    complete(client, settings, workflow_ids)


def raw_events(settings: Settings, topic: str) -> list[tuple[int, Any, Any, Any]]:
    """(partition, key, value, headers) of every record of ``topic``, in partition order."""
    found = [
        (m.partition(), m.key(), m.value(), m.headers())
        for m in read_messages(settings, topic, range(settings.partitions))
    ]
    return sorted(found, key=lambda record: record[0])  # stable: offsets stay in order


def test_verify_passes_on_a_clean_log_and_names_a_forged_event(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """`verify` passes on what the processor wrote, and exits 1 naming a forged TaskCompleted."""
    client.register([ONE_TASK])
    run_workflows(client, topics, ["v-1", "v-2", "v-3"])
    result = invoke(topics, cli_ops.verify)
    assert result.exit_code == 0, result.output
    assert "checked 3 workflows, 12 events" in result.output
    assert "violations: 0" in result.output

    history = client.history("v-2")
    forged = TaskCompleted(
        workflow_id="v-2",
        seq=len(history) + 1,
        at=history[-1].at + 1,
        task_id="ghost",
        attempt=1,
    )
    produce_and_wait(
        make_producer(topics),
        Topics(topics.topic_prefix).events,
        "v-2",
        CODEC.encode(forged),
        {"type": "TaskCompleted"},
        partition=partition_for("v-2", topics.partitions),
    )
    result = invoke(topics, cli_ops.verify)
    assert result.exit_code == 1, result.output
    assert f"v-2 #{forged.seq} unknown-task: TaskCompleted for task 'ghost'" in result.output
    assert f"v-2 #{forged.seq} after-terminal" in result.output
    assert "v-1" not in result.output
    assert "v-3" not in result.output


def test_replay_copies_exactly_the_events_from_a_moment_on(
    topics: Settings, client: Client, processor_thread: Processor, tmp_path: Path
) -> None:
    """`replay --from-time T` copies the events with at >= T as they are, and folds the slice."""
    client.register([ONE_TASK])
    run_workflows(client, topics, ["early-1", "early-2"])
    schedule(client, ["straddle"])
    time.sleep(0.01)
    moment = int(time.time() * 1000)
    time.sleep(0.01)
    complete(client, topics, ["straddle"])
    late = ["late-1", "late-2", "late-3"]
    run_workflows(client, topics, late)
    target = f"{topics.topic_prefix}slice"
    state_dir = tmp_path / "slice-state"

    result = invoke(
        topics,
        cli_ops.replay,
        "--from-time",
        str(moment),
        "--to-topic",
        target,
        "--to-state-dir",
        str(state_dir),
    )

    assert result.exit_code == 0, result.output
    events: list[Event] = list(read_events(topics))
    wanted = {(e.workflow_id, e.seq) for e in events if e.at >= moment}
    assert {w for w, _ in wanted} == {*late, "straddle"}
    assert f"copied {len(wanted)} of {len(events)} events" in result.output
    assert "note: 1 workflows began before" in result.output
    source = Topics(topics.topic_prefix).events
    expected = [
        record
        for record in raw_events(topics, source)
        if (CODEC.decode(record[2]).workflow_id, CODEC.decode(record[2]).seq) in wanted
    ]
    assert raw_events(topics, target) == expected
    folded = set()
    for number in range(topics.partitions):
        store = PartitionStore(partition_path(state_dir, topics.topic_prefix, number))
        try:
            folded |= {(s.workflow_id, str(s.status)) for s in store.workflows()}
        finally:
            store.close()
    assert folded == {(workflow_id, "COMPLETED") for workflow_id in late}  # not "straddle"


def test_replay_refuses_a_target_that_holds_records(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """Replaying into a topic that already holds records is refused before anything is copied."""
    client.register([ONE_TASK])
    run_workflows(client, topics, ["r-1"])
    target = f"{topics.topic_prefix}slice"
    first = invoke(topics, cli_ops.replay, "--from-time", "0", "--to-topic", target)
    assert first.exit_code == 0, first.output
    assert "copied 4 of 4 events" in first.output
    with pytest.raises(TopicLayoutError, match="already holds records"):
        invoke(topics, cli_ops.replay, "--from-time", "2026-01-01T00:00:00Z", "--to-topic", target)


def test_history_at_gives_the_state_as_of_an_event(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """history_at(n) is the state after event n, shaped like `status --json`."""
    client.register([ONE_TASK])
    run_workflows(client, topics, ["h-1"])
    scheduled = history_at(client, "h-1", 2)
    assert scheduled["status"] == "RUNNING"
    assert [(t["task_id"], t["status"]) for t in scheduled["tasks"]] == [("solo", "SCHEDULED")]
    assert scheduled["seq"] == 2
    final = history_at(topics, "h-1", 99)
    assert (final["status"], final["output"]) == ("COMPLETED", {"done": "h-1"})
    with pytest.raises(WorkflowError, match=r"events 1\.\.4"):
        history_at(client, "h-1", 0)
