"""Dead letters against the broker: listed, re-driven once, forced again, retried by workflow."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner, Result

from orchestrator import cli_ops
from orchestrator.audit import verify_log
from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dlq import StoredLetter, list_dead_letters, replay_dead_letters
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import DeadLetter, ExecuteTask, RetryWorkflow
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_producer, produce_and_wait
from orchestrator.log.partitioning import partition_for
from orchestrator.log.scan import read_messages
from orchestrator.log.topics import Topics
from orchestrator.processor.loop import Processor
from orchestrator.worker import Worker
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

GARBAGE = b"not avro at all"


def invoke(settings: Settings, command: click.Command, *args: str) -> Result:
    """Run an operator command with the test's settings as the main group's overrides."""
    overrides = {
        "bootstrap": settings.bootstrap,
        "topic_prefix": settings.topic_prefix,
        "partitions": settings.partitions,
    }
    return CliRunner().invoke(command, list(args), obj=overrides, catch_exceptions=False)


def requests_at(settings: Settings, key: str) -> list[Any]:
    """The records keyed ``key`` on ``requests``, read from the partition the key hashes to."""
    topic = Topics(settings.topic_prefix).requests
    home = partition_for(key, settings.partitions)
    return [m for m in read_messages(settings, topic, [home]) if m.key() == key.encode()]


def letters_eventually(settings: Settings, count: int) -> list[StoredLetter]:
    """The dead letters, once there are ``count`` of them."""
    return assert_eventually(
        lambda: (found := list_dead_letters(settings)) and len(found) == count and found,
        timeout=30,
        interval=0.5,
        message=f"{count} dead letters did not appear",
    )


def test_garbage_request_is_listed_and_replayed_once_unless_forced(
    topics: Settings, processor_thread: Processor
) -> None:
    """A dead-lettered request is listed, re-produced once, skipped the second time, forced."""
    producer = make_producer(topics)
    home = partition_for("junk-1", topics.partitions)
    requests = Topics(topics.topic_prefix).requests
    produce_and_wait(producer, requests, "junk-1", GARBAGE, partition=home)
    (first,) = letters_eventually(topics, 1)

    listing = invoke(topics, cli_ops.dlq, "list")
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.output.splitlines() if line.startswith(first.location))
    assert f"{requests}[{home}]@0" in row
    assert "junk-1" in row
    assert "C3 01" in row
    assert f" {len(GARBAGE)} no " in row

    replayed = invoke(topics, cli_ops.dlq, "replay", "--offset", first.location)
    assert replayed.exit_code == 0, replayed.output
    assert f"{requests}[{home}]" in replayed.output
    assert "replayed 1 of 1" in replayed.output
    records = requests_at(topics, "junk-1")
    assert [r.value() for r in records] == [GARBAGE, GARBAGE]
    marker = f"{Topics(topics.topic_prefix).dead_letters}:{first.location}".encode()
    assert ("replayed-from", marker) in records[1].headers()
    letters = letters_eventually(topics, 2)  # garbage stays garbage: dead-lettered again
    assert [letter.replayed for letter in letters] == [True, False]

    again = invoke(topics, cli_ops.dlq, "replay", "--offset", first.location)
    assert again.exit_code == 0, again.output
    assert "replayed 0 of 1" in again.output
    assert "already replayed" in again.output
    assert len(requests_at(topics, "junk-1")) == 2

    forced = invoke(topics, cli_ops.dlq, "replay", "--offset", first.location, "--force")
    assert "replayed 1 of 1" in forced.output
    assert len(requests_at(topics, "junk-1")) == 3

    as_json = invoke(topics, cli_ops.dlq, "list", "--json", "--limit", "1")
    (entry,) = [orjson.loads(line) for line in as_json.output.splitlines()]
    assert entry["key"] == "junk-1"
    assert entry["source_topic"] == requests
    assert entry["payload"] == GARBAGE.hex()
    assert (entry["payload_size"], entry["replayed"]) == (len(GARBAGE), True)


def test_task_letters_become_one_retry_request_per_workflow(topics: Settings) -> None:
    """Letters from task topics send RetryWorkflow for their workflow to requests, once each."""
    names = Topics(topics.topic_prefix)
    command = ExecuteTask(
        workflow_id="wf-a", task_id="solo", attempt=3, task_type="solo", ref_name="solo"
    )
    producer = make_producer(topics)
    for key, payload in (("wf-a", CODEC.encode(command)), ("wf-a", b"junk"), ("wf-b", b"junk")):
        letter = DeadLetter(
            key=key,
            source_topic=names.tasks("solo"),
            source_partition=0,
            source_offset=0,
            reason="retries exhausted",
            payload=payload,
            failed_at=1,
        )
        produce_and_wait(producer, names.dead_letters, key, CODEC.encode(letter))

    result = invoke(topics, cli_ops.dlq, "replay", "--all")

    assert result.exit_code == 0, result.output
    assert "replayed 3 of 3" in result.output
    assert "covered by the RetryWorkflow for wf-a" in result.output
    for workflow_id in ("wf-a", "wf-b"):
        (record,) = requests_at(topics, workflow_id)
        request = CODEC.decode(record.value())
        assert isinstance(request, RetryWorkflow)
        assert (request.workflow_id, record.key()) == (workflow_id, workflow_id.encode())
    assert replay_dead_letters(topics, None) == 0


def test_replay_needs_a_selection_and_reports_missing_letters(topics: Settings) -> None:
    """`dlq replay` wants --all or --offset, and exits 1 for a letter that is not there."""
    assert invoke(topics, cli_ops.dlq, "replay").exit_code == 2
    missing = invoke(topics, cli_ops.dlq, "replay", "--offset", "0:99")
    assert missing.exit_code == 1
    assert "no dead letter there" in missing.output
    assert invoke(topics, cli_ops.dlq, "replay", "--offset", "zero").exit_code == 2


@pytest.fixture
def failing_twice(topics: Settings) -> Iterator[None]:
    """A worker of task type `flaky` in a thread whose first two calls per workflow fail."""
    calls: dict[str, int] = {}
    worker = Worker(name="dlq")

    @worker.task("flaky")
    def flaky(task_input: dict[str, str]) -> dict[str, int]:
        key = task_input["key"]
        calls[key] = calls.get(key, 0) + 1
        if calls[key] <= 2:
            raise RuntimeError(f"call {calls[key]} fails")
        return {"call": calls[key]}

    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(topics,), kwargs={"concurrency": 2, "stop": stop}, daemon=True
    )
    thread.start()
    yield
    stop.set()
    thread.join(30)


def test_exhausted_task_letter_replay_retries_the_workflow_to_completion(
    topics: Settings, client: Client, processor_thread: Processor, failing_twice: None
) -> None:
    """A task out of retries is dead-lettered; `dlq replay` retries its workflow to completion."""
    definition = {
        "name": "exhaust",
        "tasks": [
            {
                "name": "flaky",
                "taskReferenceName": "t",
                "inputParameters": {"key": "${workflow.input.key}"},
                "taskDefinition": {"name": "flaky", "retryCount": 1, "retryDelaySeconds": 0},
            }
        ],
    }
    client.register([parse_definition(definition)])
    client.start("exhaust", input={"key": "e1"}, workflow_id="e1")
    assert client.wait("e1", timeout=60).status == "FAILED"
    (letter,) = letters_eventually(topics, 1)
    assert (letter.letter.key, letter.letter.source_topic) == (
        "e1",
        Topics(topics.topic_prefix).tasks("flaky"),
    )

    listing = invoke(topics, cli_ops.dlq, "list")
    assert f"{Topics(topics.topic_prefix).tasks('flaky')} (exhausted)" in listing.output

    result = invoke(topics, cli_ops.dlq, "replay", "--all")

    assert result.exit_code == 0, result.output
    assert "RetryWorkflow e1" in result.output
    assert_eventually(lambda: client.status("e1").status == "COMPLETED", timeout=30)
    assert client.status("e1").output == {"call": 3}
    kinds = [type(event).__name__ for event in client.history("e1")]
    assert kinds.index("WorkflowFailed") < kinds.index("WorkflowReopened")
    report = verify_log(topics)  # the reopened history obeys every rule
    assert report.violations == []
    assert report.workflows == 1
