"""A running worker follows its live configuration file: concurrency and rate limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka import Producer

from orchestrator.config import Settings
from orchestrator.engine.records import ExecuteTask
from orchestrator.live_config import ConfigWatcher
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import admin_client, make_producer, produce_and_wait
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import ensure_task_topic
from orchestrator.worker import Worker, WorkerLimits
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

WAIT_S = 30.0


class Probe:
    """Records when each handler call starts and how many run at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.starts: list[float] = []
        self.in_flight = 0
        self.most = 0

    def reset(self) -> None:
        with self._lock:
            self.starts, self.most = [], 0

    def run(self, seconds: float) -> None:
        with self._lock:
            self.starts.append(time.monotonic())
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(seconds)
        with self._lock:
            self.in_flight -= 1

    def finished(self, count: int) -> bool:
        with self._lock:
            return len(self.starts) >= count and self.in_flight == 0


def send_naps(producer: Producer, settings: Settings, count: int, seconds: float) -> None:
    """Produce ``count`` nap task commands, each sleeping ``seconds``."""
    topic = ensure_task_topic(admin_client(settings), settings, "nap")
    for _ in range(count):
        workflow_id = f"wf-{uuid4().hex[:8]}"
        task = ExecuteTask(
            workflow_id=workflow_id,
            task_id=uuid4().hex,
            task_type="nap",
            attempt=1,
            ref_name="nap",
            input={"seconds": seconds},
            workflow_name="direct",
        )
        produce_and_wait(
            producer,
            topic,
            workflow_id,
            CODEC.encode(task),
            partition=partition_for(workflow_id, settings.partitions),
        )


@pytest.fixture
def producer(topics: Settings) -> Iterator[Producer]:
    """A plain producer for injecting task commands."""
    instance = make_producer(topics)
    yield instance
    instance.flush(5)


def most_starts_within(starts: list[float], window: float) -> int:
    """The largest number of starts inside any ``window`` seconds."""
    ordered = sorted(starts)
    return max(
        sum(1 for t in ordered[i:] if t - first <= window) for i, first in enumerate(ordered)
    )


@pytest.mark.timeout(120)
def test_a_running_worker_follows_concurrency_and_rate_limit_edits(
    topics: Settings, producer: Producer, tmp_path: Path
) -> None:
    """Concurrency 1, then 4, then a 4/s rate limit: each edit applies without a restart."""
    probe = Probe()
    worker = Worker(name="live")

    @worker.task("nap")
    def nap(task_input: dict[str, Any]) -> dict[str, Any]:
        probe.run(task_input["seconds"])
        return {}

    config = tmp_path / "live.toml"
    config.write_text("[worker]\nconcurrency = 1\n")
    limits = WorkerLimits(concurrency=8)
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(topics,), kwargs={"limits": limits, "stop": stop}, daemon=True
    )
    with ConfigWatcher(config, limits.apply, interval_s=0.05):
        assert limits.slots.size == 1, "the file's concurrency wins over the constructor's"
        thread.start()
        try:
            send_naps(producer, topics, 4, 0.2)
            assert_eventually(lambda: probe.finished(4), timeout=WAIT_S)
            assert probe.most == 1

            config.write_text("[worker]\nconcurrency = 4\n")
            assert_eventually(lambda: limits.slots.size == 4, timeout=5)
            probe.reset()
            send_naps(producer, topics, 8, 0.4)
            assert_eventually(lambda: probe.finished(8), timeout=WAIT_S)
            assert probe.most == 4

            config.write_text("[worker]\nconcurrency = 4\n[worker.rate_limits]\nnap = 4\n")
            assert_eventually(lambda: limits.bucket("nap").rate == 4, timeout=5)
            probe.reset()
            send_naps(producer, topics, 12, 0.0)
            assert_eventually(lambda: probe.finished(12), timeout=WAIT_S)
        finally:
            stop.set()
            thread.join(WAIT_S)
    assert not thread.is_alive(), "the worker did not stop"
    # 4 banked tokens start at once, then one every 0.25 s: the twelfth about 2 s later.
    span = max(probe.starts) - min(probe.starts)
    assert span >= 1.6, f"12 starts at 4/s took only {span:.2f} s"
    assert most_starts_within(probe.starts, 1.0) <= 8, "more than a burst plus a second's rate"
