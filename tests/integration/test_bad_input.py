"""Bad input gets a clear error, and nothing is lost or half-applied."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import TopicPartition

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import (
    DeadLetter,
    ResultStatus,
    TaskResult,
    TaskScheduled,
    WorkflowRejected,
)
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_consumer, make_producer, produce_and_wait
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics
from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

ONE_TASK = parse_definition(
    {"name": "one", "tasks": [{"name": "solo", "taskReferenceName": "solo"}]}
)


def cli(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the orchestrator command against the test's topics."""
    env = {
        **os.environ,
        "ORCH_BOOTSTRAP": settings.bootstrap,
        "ORCH_TOPIC_PREFIX": settings.topic_prefix,
        "ORCH_PARTITIONS": str(settings.partitions),
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def end_offsets(settings: Settings, topic: str, partitions: int) -> list[int]:
    """The high watermark of each partition of ``topic``."""
    consumer = make_consumer(settings)
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()


def dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every record on the dead-letters topic."""
    topic = Topics(settings.topic_prefix).dead_letters
    consumer = make_consumer(settings, None, **{"enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    found, eof = [], set()
    deadline = time.monotonic() + 20
    while len(eof) < settings.partitions and time.monotonic() < deadline:
        for message in consumer.consume(100, 0.2):
            if message.error():
                eof.add(message.partition())
            else:
                found.append(CODEC.decode(message.value()))
    consumer.close()
    return found


def test_invalid_definition_names_file_and_path_and_publishes_nothing(
    topics: Settings, tmp_path: Path
) -> None:
    """`definitions register` exits non-zero naming the file and field; nothing is published."""
    good = tmp_path / "good.json"
    good.write_bytes(orjson.dumps(ONE_TASK.to_json()))
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({"name": "x", "tasks": [{"name": "a"}]}))
    result = cli(topics, "definitions", "register", str(good), str(bad))
    assert result.returncode != 0
    assert "bad.json" in result.stderr
    assert "tasks[0].taskReferenceName" in result.stderr
    assert "Traceback" not in result.stderr
    assert end_offsets(topics, Topics(topics.topic_prefix).definitions, 1) == [0]


def test_unknown_definition_is_rejected_with_reason(
    topics: Settings, processor_thread: Processor
) -> None:
    """Starting an unknown workflow records a rejection; `start --wait` exits non-zero with it."""
    result = cli(topics, "start", "no_such_flow", "--id", "rejected-1", "--wait", "--timeout", "30")
    assert result.returncode == 1
    assert "unknown workflow definition 'no_such_flow'" in result.stdout
    history = cli(topics, "history", "rejected-1", "--json")
    events = [orjson.loads(line) for line in history.stdout.splitlines()]
    assert [e["type"] for e in events] == [WorkflowRejected.__name__]
    status = cli(topics, "status", "rejected-1", "--json")
    assert orjson.loads(status.stdout)["status"] == "FAILED"


def test_undecodable_records_are_dead_lettered_and_processing_goes_on(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """Garbage on requests and results lands in dead-letters with its origin; work continues."""
    names = Topics(topics.topic_prefix)
    producer = make_producer(topics)
    produce_and_wait(
        producer,
        names.requests,
        "junk-1",
        b"not avro at all",
        partition=partition_for("junk-1", topics.partitions),
    )
    produce_and_wait(
        producer,
        names.results,
        "junk-2",
        b"\xc3\x01\x00\x00\x00\x00\x00\x00\x00\x00xx",
        partition=partition_for("junk-2", topics.partitions),
    )
    letters = assert_eventually(
        lambda: dead_letters(topics) if len(dead_letters(topics)) == 2 else None,
        timeout=30,
        interval=0.5,
    )
    by_key = {letter.key: letter for letter in letters}
    assert by_key["junk-1"].source_topic == names.requests
    assert by_key["junk-1"].payload == b"not avro at all"
    assert "C3 01" in by_key["junk-1"].reason
    assert by_key["junk-2"].source_topic == names.results
    assert "unknown schema fingerprint" in by_key["junk-2"].reason
    assert by_key["junk-2"].source_partition == partition_for("junk-2", topics.partitions)
    assert by_key["junk-2"].source_offset >= 0
    client.register([ONE_TASK])
    workflow_id = client.start("one", workflow_id="after-junk")
    assert_eventually(
        lambda: any(isinstance(e, TaskScheduled) for e in client.history(workflow_id)),
        timeout=30,
        message="the processor stopped after the garbage",
    )


def test_unknown_and_stale_results_are_ignored(
    topics: Settings, client: Client, processor_thread: Processor
) -> None:
    """Results for unknown tasks, stale attempts and duplicates change nothing; the run goes on."""
    client.register([ONE_TASK])
    workflow_id = client.start("one", workflow_id="stale-1")
    assert_eventually(lambda: len(client.history(workflow_id)) == 2, timeout=30)
    producer = make_producer(topics)
    names = Topics(topics.topic_prefix)

    def send(task_id: str, attempt: int) -> None:
        result = TaskResult(
            workflow_id=workflow_id,
            task_id=task_id,
            attempt=attempt,
            status=ResultStatus.COMPLETED,
            output={"n": attempt},
        )
        produce_and_wait(
            producer,
            names.results,
            workflow_id,
            CODEC.encode(result),
            partition=partition_for(workflow_id, topics.partitions),
        )

    send("nope", 1)
    send("solo", 7)
    send("solo", 1)
    send("solo", 1)
    state = client.wait(workflow_id, timeout=30)
    assert state.status == "COMPLETED"
    assert state.output == {"n": 1}
    assert [type(e).__name__ for e in client.history(workflow_id)] == [
        "WorkflowStarted",
        "TaskScheduled",
        "TaskCompleted",
        "WorkflowCompleted",
    ]


def test_unreachable_broker_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    """Commands against a closed port exit non-zero within seconds, naming the address."""
    settings = Settings(bootstrap="127.0.0.1:1", state_dir=tmp_path)
    started = time.monotonic()
    env_settings = settings.model_copy()
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "status", "whatever"],
        env={**os.environ, "ORCH_BOOTSTRAP": env_settings.bootstrap, "ORCH_CONNECT_TIMEOUT_S": "3"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 20
