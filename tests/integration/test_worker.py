"""The worker runtime on the real broker: results, failures, dead letters, stop, concurrency.

Task commands go in and results come out without a processor; workflows end to end with one are
in ``test_worker_workflows``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from structlog.testing import capture_logs

from orchestrator.config import Settings
from orchestrator.engine.records import DeadLetter, ExecuteTask, ResultStatus, TaskResult
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import admin_client, make_consumer, make_producer, produce_and_wait
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics, ensure_task_topic
from orchestrator.worker import Worker
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

WAIT_S = 25.0


# Helpers ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def running(worker: Worker, settings: Settings, **options: Any) -> Iterator[threading.Event]:
    """Run ``worker`` in a thread; yield its stop event; stop it and join it on the way out."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            worker.run(settings, stop=stop, **options)
        except BaseException as exc:
            failures.append(exc)
            raise

    thread = threading.Thread(target=serve, name=f"worker-{worker.name}", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert not thread.is_alive(), "the worker did not stop"
    assert not failures, f"the worker failed: {failures[0]!r}"


def execute_task(task_type: str, task_input: Any = None, workflow_id: str = "") -> ExecuteTask:
    """A task command as the processor would produce it."""
    return ExecuteTask(
        workflow_id=workflow_id or f"wf-{uuid4().hex[:8]}",
        task_id=f"task-{uuid4().hex[:8]}",
        attempt=1,
        task_type=task_type,
        ref_name=f"{task_type}_ref",
        input=task_input if task_input is not None else {},
        workflow_name="direct",
    )


def id_off_partition(settings: Settings, partition: int) -> str:
    """A fresh workflow id whose records do not land on ``partition``."""
    while True:
        workflow_id = f"wf-{uuid4().hex[:8]}"
        if partition_for(workflow_id, settings.partitions) != partition:
            return workflow_id


def send(producer: Producer, settings: Settings, task: ExecuteTask) -> tuple[int, int]:
    """Produce ``task`` to its workflow's partition of its topic; return (partition, offset)."""
    topic = ensure_task_topic(admin_client(settings), settings, task.task_type)
    return send_raw(
        producer,
        topic,
        task.workflow_id,
        CODEC.encode(task),
        partition_for(task.workflow_id, settings.partitions),
    )


def send_raw(
    producer: Producer, topic: str, key: str, value: bytes, partition: int
) -> tuple[int, int]:
    """Produce raw bytes; return where they landed."""
    message = produce_and_wait(producer, topic, key, value, partition=partition)
    return message.partition() or 0, message.offset() or 0


class Tail:
    """Reads a topic from the beginning of every partition, keeping what it has seen."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.messages: list[Message] = []
        self._consumer: Consumer = make_consumer(settings)
        self._consumer.assign(
            [TopicPartition(topic, number, 0) for number in range(settings.partitions)]
        )

    def until(self, found: Callable[[list[Message]], Any], timeout: float = WAIT_S) -> Any:
        """Consume until ``found(messages)`` is truthy; return its value."""

        def check() -> Any:
            self.messages.extend(m for m in self._consumer.consume(500, 0.1) if not m.error())
            return found(self.messages)

        return assert_eventually(check, timeout=timeout, message="record not seen")

    def records(self, cls: type) -> list[tuple[Message, Any]]:
        """Every message seen so far that decodes to a ``cls``."""
        decoded = [(message, CODEC.decode(message.value())) for message in self.messages]
        return [(message, record) for message, record in decoded if isinstance(record, cls)]

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()


@pytest.fixture
def tails(topics: Settings) -> Iterator[Callable[[str], Tail]]:
    """A factory of topic readers, closed at the end of the test."""
    opened: list[Tail] = []

    def tail(topic: str) -> Tail:
        opened.append(Tail(topics, topic))
        return opened[-1]

    yield tail
    for reader in opened:
        reader.close()


@pytest.fixture
def producer(topics: Settings) -> Iterator[Producer]:
    """A plain producer for injecting task commands."""
    instance = make_producer(topics)
    yield instance
    instance.flush(5)


def result_of(task: ExecuteTask) -> Callable[[list[Message]], tuple[Message, TaskResult] | None]:
    """A ``Tail.until`` predicate: the result message of ``task``, if seen."""

    def found(messages: list[Message]) -> tuple[Message, TaskResult] | None:
        for message in messages:
            record = CODEC.decode(message.value())
            if isinstance(record, TaskResult) and record.task_id == task.task_id:
                return message, record
        return None

    return found


def committed(settings: Settings, group: str, topic: str, partition: int) -> int:
    """The offset ``group`` committed for ``topic`` [``partition``] (negative when none)."""
    consumer = make_consumer(settings, group)
    try:
        [position] = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return position.offset
    finally:
        consumer.close()


def committed_is(settings: Settings, group: str, topic: str, partition: int, want: int) -> bool:
    """Assert that ``group`` committed ``want`` for ``topic`` [``partition``]."""
    offset = committed(settings, group, topic, partition)
    assert offset == want, f"{group} committed {offset} on {topic}[{partition}], not {want}"
    return True


def first_offset_seen_by_group(
    settings: Settings, group: str, topic: str, partition: int, marker_offset: int
) -> int:
    """Join ``group`` as a new member and return the first offset of ``partition`` it is given.

    Reads until the record at ``marker_offset`` arrives, so the wait is bounded by a record.
    """
    consumer = make_consumer(settings, group)
    consumer.subscribe([topic])
    seen: list[int] = []

    def reached_marker() -> bool:
        for message in consumer.consume(100, 0.1):
            if not message.error() and message.partition() == partition:
                seen.append(message.offset() or 0)
        return marker_offset in seen

    try:
        assert_eventually(
            reached_marker, timeout=WAIT_S, message="the new group member did not reach the marker"
        )
        return min(seen)
    finally:
        consumer.close()


def committed_total(settings: Settings, task_type: str, expected: int) -> bool:
    """Whether the task type's group committed ``expected`` records over all partitions."""
    topic, group = Topics(settings.topic_prefix).tasks(task_type), group_of(settings, task_type)
    offsets = [committed(settings, group, topic, p) for p in range(settings.partitions)]
    return sum(max(0, offset) for offset in offsets) == expected


def group_of(settings: Settings, task_type: str) -> str:
    """The consumer group of a task type's workers."""
    return f"{settings.topic_prefix}worker.{task_type}"


# The worker alone: task commands in, results out -----------------------------------------------


def test_garbage_goes_to_dead_letters_and_the_worker_goes_on(
    topics: Settings, producer: Producer, tails: Callable[[str], Tail]
) -> None:
    """Undecodable bytes are dead-lettered with reason and origin; the next task still runs."""
    worker = Worker(name="echo")

    @worker.task("echo")
    def echo(task_input: dict[str, Any]) -> dict[str, Any]:
        return task_input

    names = Topics(topics.topic_prefix)
    tasks_topic = ensure_task_topic(admin_client(topics), topics, "echo")
    garbage = b"\x00definitely not avro"
    with running(worker, topics):
        where = send_raw(producer, tasks_topic, "wf-garbage", garbage, partition=2)
        # On another partition, so the commit checked below is the dead-lettered record's alone.
        task = execute_task("echo", {"said": "hello"}, workflow_id=id_off_partition(topics, 2))
        send(producer, topics, task)
        letters = tails(names.dead_letters)
        letters.until(lambda _: letters.records(DeadLetter))
        results = tails(names.results)
        message, result = results.until(result_of(task))
        assert_eventually(
            lambda: committed_is(topics, group_of(topics, "echo"), tasks_topic, 2, where[1] + 1),
            timeout=WAIT_S,
            message="the dead-lettered offset was not committed",
        )
    [(_, letter)] = letters.records(DeadLetter)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        tasks_topic,
        *where,
    )
    assert letter.payload == garbage
    assert letter.key == "wf-garbage"
    assert "not an Avro single-object record" in letter.reason
    assert result.status is ResultStatus.COMPLETED
    assert result.output == {"said": "hello"}
    assert message.partition() == partition_for(task.workflow_id, topics.partitions)
    assert message.key() == task.workflow_id.encode()
    assert dict(message.headers() or [])["type"] == b"TaskResult"


def test_graceful_stop_finishes_the_running_handler_and_commits(
    topics: Settings, producer: Producer, tails: Callable[[str], Tail]
) -> None:
    """On stop, a handler in flight finishes, its result is delivered and its offset committed."""
    started = threading.Event()
    worker = Worker(name="slow")

    @worker.task("slow")
    def slow(task_input: dict[str, Any]) -> dict[str, bool]:
        started.set()
        time.sleep(1.0)
        return {"finished": True}

    task = execute_task("slow")
    with running(worker, topics, grace_period=10.0) as stop:
        partition, offset = send(producer, topics, task)
        assert started.wait(WAIT_S), "the handler never started"
        stop.set()
    _, result = tails(Topics(topics.topic_prefix).results).until(result_of(task))
    assert result.output == {"finished": True}
    topic, group = Topics(topics.topic_prefix).tasks("slow"), group_of(topics, "slow")
    assert committed(topics, group, topic, partition) == offset + 1
    _, marker = send_raw(producer, topic, "marker", b"marker", partition)
    assert first_offset_seen_by_group(topics, group, topic, partition, marker) == marker


def test_handler_outliving_the_grace_period_is_handed_back(
    topics: Settings, producer: Producer
) -> None:
    """A handler still running after the grace period leaves its record uncommitted for others."""
    started, release = threading.Event(), threading.Event()
    worker = Worker(name="stuck")

    @worker.task("stuck")
    def stuck(task_input: dict[str, Any]) -> dict[str, bool]:
        started.set()
        release.wait(WAIT_S)
        return {"finished": True}

    task = execute_task("stuck")
    try:
        with running(worker, topics, grace_period=0.2) as stop:
            partition, offset = send(producer, topics, task)
            assert started.wait(WAIT_S), "the handler never started"
            stop.set()
        topic, group = Topics(topics.topic_prefix).tasks("stuck"), group_of(topics, "stuck")
        assert committed(topics, group, topic, partition) <= offset
        _, marker = send_raw(producer, topic, "marker", b"marker", partition)
        assert first_offset_seen_by_group(topics, group, topic, partition, marker) == offset
        with capture_logs() as logs:
            release.set()
            assert_eventually(
                lambda: any("abandoned task dropped" in entry["event"] for entry in logs),
                timeout=WAIT_S,
                message="the late result of the abandoned handler was not dropped",
            )
    finally:
        release.set()


def test_concurrency_runs_handlers_in_parallel_within_the_bound(
    topics: Settings, producer: Producer, tails: Callable[[str], Tail]
) -> None:
    """With concurrency 4, eight 0.3 s tasks take about two rounds, never more than 4 at once."""
    lock = threading.Lock()
    spans: list[tuple[float, float]] = []
    in_flight = [0, 0]  # now, most

    worker = Worker(name="sleepy")

    @worker.task("nap")
    def nap(task_input: dict[str, Any]) -> dict[str, int]:
        began = time.monotonic()
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.3)
        with lock:
            in_flight[0] -= 1
            spans.append((began, time.monotonic()))
        return {"n": task_input["n"]}

    tasks = [execute_task("nap", {"n": n}) for n in range(8)]
    results = tails(Topics(topics.topic_prefix).results)
    with running(worker, topics, concurrency=4):
        for task in tasks:
            send(producer, topics, task)
        wanted = {task.task_id for task in tasks}
        results.until(lambda _: wanted <= {r.task_id for _, r in results.records(TaskResult)})
    assert len(spans) == 8, "a task ran more than once"
    assert in_flight[1] == 4
    elapsed = max(end for _, end in spans) - min(begin for begin, _ in spans)
    assert elapsed < 1.5, f"8 tasks of 0.3 s at concurrency 4 took {elapsed:.2f} s"


def test_task_types_share_the_concurrency_bound(
    topics: Settings, producer: Producer, tails: Callable[[str], Tail]
) -> None:
    """Two task types with one slot between them both make progress, never two calls at once."""
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most
    worker = Worker(name="pair")

    def work(task_input: dict[str, Any]) -> dict[str, Any]:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.01)
        with lock:
            in_flight[0] -= 1
        return task_input

    worker.task("left")(work)
    worker.task("right")(work)
    tasks = [execute_task(kind, {"n": n}) for n in range(5) for kind in ("left", "right")]
    results = tails(Topics(topics.topic_prefix).results)
    with running(worker, topics, concurrency=1):
        for task in tasks:
            send(producer, topics, task)
        wanted = {task.task_id for task in tasks}
        results.until(lambda _: wanted <= {r.task_id for _, r in results.records(TaskResult)})
        for kind in ("left", "right"):
            assert_eventually(
                partial(committed_total, topics, kind, 5),
                timeout=WAIT_S,
                message=f"{kind} offsets not committed",
            )
    assert in_flight[1] == 1


def test_result_too_large_to_publish_fails_the_task(
    topics: Settings, producer: Producer, tails: Callable[[str], Tail]
) -> None:
    """An output the producer refuses becomes a FAILED result saying why, not silence."""
    worker = Worker(name="huge")

    @worker.task("huge")
    def huge(task_input: dict[str, Any]) -> dict[str, str]:
        return {"blob": "x" * 2_000_000}

    task = execute_task("huge")
    with running(worker, topics):
        send(producer, topics, task)
        _, result = tails(Topics(topics.topic_prefix).results).until(result_of(task))
    assert result.status is ResultStatus.FAILED
    assert result.error_type == "ResultPublishError"
    assert "cannot publish the task result" in (result.reason or "")


SIGNALLED_WORKER = """
from orchestrator.config import Settings
from orchestrator.telemetry import configure_logging
from workers.examples import worker

configure_logging("json", "INFO")
worker.run(Settings())
print("returned", flush=True)
"""


def test_sigterm_stops_a_worker_run_without_a_stop_event(topics: Settings, tmp_path: Path) -> None:
    """Without a stop event, SIGTERM stops run() gracefully: consumers close and it returns."""
    env = {
        **os.environ,
        "ORCH_BOOTSTRAP": topics.bootstrap,
        "ORCH_TOPIC_PREFIX": topics.topic_prefix,
        "ORCH_PARTITIONS": str(topics.partitions),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        child = subprocess.Popen(
            [sys.executable, "-c", SIGNALLED_WORKER], env=env, stdout=output, stderr=output
        )
    try:
        assert_eventually(
            lambda: "partitions assigned" in log.read_text(),
            timeout=WAIT_S,
            message="the worker did not join its groups",
        )
        child.send_signal(signal.SIGTERM)
        assert child.wait(WAIT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    text = log.read_text()
    assert "stop requested" in text
    assert text.count("consumer closed") == len(("research", "draft", "review", "publish"))
    assert text.rstrip().endswith("returned")
