"""Where a dead letter is re-driven to, decided without a broker."""

from __future__ import annotations

import pytest

from orchestrator.dlq import Redrive, parse_location, route
from orchestrator.engine.records import DeadLetter, ExecuteTask, RetryWorkflow
from orchestrator.log.codec import CODEC
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics

TOPICS = Topics("t.")
PARTITIONS = 6


def letter(source: str, key: str | None, payload: bytes | None) -> DeadLetter:
    """A dead letter from ``source`` partition 2, offset 7."""
    return DeadLetter(
        key=key,
        source_topic=source,
        source_partition=2,
        source_offset=7,
        reason="broken",
        payload=payload,
    )


def redrive_of(dead: DeadLetter) -> Redrive:
    """The re-drive ``route`` plans, failing the test when it refuses."""
    planned = route(dead, TOPICS, PARTITIONS)
    assert isinstance(planned, Redrive), planned
    return planned


@pytest.mark.parametrize("source", [TOPICS.requests, TOPICS.results])
def test_request_and_result_letters_go_back_to_their_topic_at_the_key_partition(
    source: str,
) -> None:
    """Undecodable requests and results are re-produced, same bytes, where the key hashes."""
    planned = redrive_of(letter(source, "junk-1", b"garbage"))
    assert (planned.topic, planned.key, planned.value) == (source, "junk-1", b"garbage")
    assert planned.partition == partition_for("junk-1", PARTITIONS)
    assert planned.headers == {}


def test_keyless_letter_goes_back_to_its_source_partition() -> None:
    """Without a key there is nothing to hash: the source partition is kept."""
    assert redrive_of(letter(TOPICS.requests, None, b"x")).partition == 2


def test_task_letter_with_an_execute_task_retries_its_workflow() -> None:
    """A task command that could not run becomes a RetryWorkflow for the command's workflow."""
    command = ExecuteTask(
        workflow_id="wf-9", task_id="solo", attempt=3, task_type="solo", ref_name="solo"
    )
    planned = redrive_of(letter(TOPICS.tasks("solo"), "other-key", CODEC.encode(command)))
    request = CODEC.decode(planned.value)
    assert isinstance(request, RetryWorkflow)
    assert request.workflow_id == "wf-9"
    assert (planned.topic, planned.key) == (TOPICS.requests, "wf-9")
    assert planned.partition == partition_for("wf-9", PARTITIONS)
    assert planned.headers == {"type": "RetryWorkflow"}
    assert planned.retries == "wf-9"


def test_undecodable_task_letter_retries_the_workflow_its_key_names() -> None:
    """Garbage on a task topic is retried through the workflow id in its key."""
    planned = redrive_of(letter(TOPICS.tasks("solo"), "wf-3", b"\x00junk"))
    assert CODEC.decode(planned.value).workflow_id == "wf-3"


@pytest.mark.parametrize(
    ("dead", "reason"),
    [
        (letter("t.tasks.solo", None, b"junk"), "no workflow id"),
        (letter("t.events", "wf-1", b"x"), "is not requests, results or a task topic"),
        (letter("t.requests", "wf-1", None), "no payload"),
    ],
)
def test_letters_that_cannot_be_redriven_say_why(dead: DeadLetter, reason: str) -> None:
    """A letter with nowhere to go is refused with the reason."""
    planned = route(dead, TOPICS, PARTITIONS)
    assert isinstance(planned, str)
    assert reason in planned


def test_parse_location() -> None:
    """--offset takes PARTITION:OFFSET and refuses anything else."""
    assert parse_location("3:41") == (3, 41)
    for bad in ("3", "a:1", "1:-2", ""):
        with pytest.raises(ValueError, match="PARTITION:OFFSET"):
            parse_location(bad)
