"""HTTP task polling (``/api/tasks/poll...``): Conductor workers run tasks taken from Kafka.

A real broker, processor and API; the pollers are plain httpx loops, as any HTTP worker is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import TopicPartition

from orchestrator.config import Settings
from orchestrator.log.kafka import make_consumer
from orchestrator.log.topics import Topics
from orchestrator.processor.loop import Processor
from orchestrator.worker import Worker
from tests.helpers import assert_eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration
Json = Any

CHAIN = {
    "name": "hp_chain",
    "tasks": [
        {
            "name": "hp_step",
            "taskReferenceName": f"s{i}",
            "type": "SIMPLE",
            "inputParameters": {
                "n": "${workflow.input.n}" if i == 0 else f"${{s{i - 1}.output.n}}"
            },
        }
        for i in range(3)
    ],
    "outputParameters": {"n": "${s2.output.n}"},
}
SIDE = {
    "name": "hp_side",
    "tasks": [{"name": "hp_either", "taskReferenceName": "either", "type": "SIMPLE"}],
    "outputParameters": {"by": "${either.output.by}"},
}


@pytest.fixture
def start_api(
    api_factory: Callable[..., ApiServer], processor_thread: Processor
) -> Iterator[Callable[[], httpx.Client]]:
    """Start an API with a processor running and the definitions registered; return a client."""
    clients: list[httpx.Client] = []

    def start() -> httpx.Client:
        client = httpx.Client(base_url=api_factory().url, timeout=30)
        clients.append(client)
        registered = client.put("/api/metadata/workflow", json=[CHAIN, SIDE])
        assert registered.status_code == 200, registered.text
        return client

    yield start
    for client in clients:
        client.close()


@pytest.fixture
def api(start_api: Callable[[], httpx.Client]) -> httpx.Client:
    """A client of an API with the default polling settings."""
    return start_api()


def start(api: httpx.Client, name: str, n: int = 0) -> str:
    """Start ``name`` with input ``{"n": n}``; return its id."""
    response = api.post("/api/workflow", json={"name": name, "input": {"n": n}})
    assert response.status_code == 200, response.text
    return response.text


def status(api: httpx.Client, workflow_id: str) -> dict[str, Json]:
    """The run as Conductor's Workflow."""
    response = api.get(f"/api/workflow/{workflow_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def all_completed(api: httpx.Client, ids: list[str]) -> list[dict[str, Json]]:
    """Wait until every run completed; return them."""

    def check() -> list[dict[str, Json]]:
        runs = [status(api, workflow_id) for workflow_id in ids]
        unfinished = [r["workflowId"] for r in runs if r["status"] != "COMPLETED"]
        assert not unfinished, f"not completed: {unfinished}"
        return runs

    return assert_eventually(check, timeout=60)


def complete(task: dict[str, Json], output: dict[str, Json]) -> dict[str, Json]:
    """A COMPLETED TaskResult body for a polled task."""
    return {
        "workflowInstanceId": task["workflowInstanceId"],
        "taskId": task["taskId"],
        "status": "COMPLETED",
        "outputData": output,
        "workerId": task["workerId"],
    }


class Poller:
    """An HTTP worker in a thread: batch-polls ``task_type`` and completes what it gets."""

    def __init__(self, url: str, task_type: str, name: str, work: Callable[[Json], Json]) -> None:
        self.task_type = task_type
        self.name = name
        self.work = work
        self.seen: list[tuple[str, str]] = []
        self.failures: list[BaseException] = []
        self._client = httpx.Client(base_url=url, timeout=30)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        params = {"count": 5, "timeout": 200, "workerid": self.name}
        try:
            while not self._stop.is_set():
                polled = self._client.get(f"/api/tasks/poll/batch/{self.task_type}", params=params)
                assert polled.status_code == 200, polled.text
                for task in polled.json():
                    self.seen.append((task["workflowInstanceId"], task["taskId"]))
                    body = complete(task, self.work(task["inputData"]))
                    updated = self._client.post("/api/tasks", json=body)
                    assert updated.status_code == 200, updated.text
                    assert updated.text == task["taskId"]
        except BaseException as exc:
            self.failures.append(exc)
            raise

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.close()
        assert not self._thread.is_alive(), f"poller {self.name} did not stop"
        assert not self.failures, f"poller {self.name} failed: {self.failures[0]!r}"


def increment(task_input: Json) -> Json:
    """The no-op work of ``hp_step``: n + 1."""
    return {"n": task_input["n"] + 1}


def committed_total(settings: Settings, task_type: str) -> int:
    """The sum of the offsets the workers' group committed on the task type's topic."""
    topic = Topics(settings.topic_prefix).tasks(task_type)
    consumer = make_consumer(settings, f"{settings.topic_prefix}worker.{task_type}")
    try:
        wanted = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(wanted, timeout=10))
    finally:
        consumer.close()


def results_written(settings: Settings) -> int:
    """How many records the results topic holds (the sum of its high watermarks)."""
    topic = Topics(settings.topic_prefix).results
    consumer = make_consumer(settings)
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(settings.partitions)
        )
    finally:
        consumer.close()


# Tests -----------------------------------------------------------------------------------------


def test_http_poller_runs_a_workflow(api: httpx.Client) -> None:
    """A polling loop (batch poll, POST /api/tasks) runs every SIMPLE task; the log shows it."""
    ids = [start(api, "hp_chain", n) for n in range(3)]
    with Poller(str(api.base_url), "hp_step", "w-http", increment) as poller:
        runs = all_completed(api, ids)
    assert [run["output"] for run in runs] == [{"n": 3}, {"n": 4}, {"n": 5}]
    assert len(poller.seen) == 9
    for workflow_id in ids:
        events = api.get(f"/v1/workflows/{workflow_id}/history").json()["events"]
        types = [event["type"] for event in events]
        assert types[0] == "WorkflowStarted"
        assert types[-1] == "WorkflowCompleted"
        assert types.count("TaskCompleted") == 3
    empty = api.get("/api/tasks/poll/hp_step", params={"workerid": "w-http"})
    assert empty.status_code == 204
    batch = api.get("/api/tasks/poll/batch/hp_step", params={"count": 3, "timeout": 50})
    assert (batch.status_code, batch.json()) == (200, [])


def test_a_single_poll_hands_out_a_conductor_task(api: httpx.Client) -> None:
    """GET /api/tasks/poll/{type} answers one IN_PROGRESS Task with the command's fields."""
    workflow_id = start(api, "hp_chain", 41)

    def polled() -> Json:
        found = api.get("/api/tasks/poll/hp_step", params={"workerid": "w1"})
        assert found.status_code == 200, found.status_code  # 204 until the command arrives
        return found.json()

    task = assert_eventually(polled, timeout=30)
    assert task["status"] == "IN_PROGRESS"
    assert task["workflowInstanceId"] == workflow_id
    assert (task["taskType"], task["referenceTaskName"]) == ("hp_step", "s0")
    assert (task["inputData"], task["retryCount"], task["workerId"]) == ({"n": 41}, 0, "w1")
    assert (task["workflowType"], task["responseTimeoutSeconds"]) == ("hp_chain", 300)
    assert api.post("/api/tasks", json=complete(task, {"n": 42})).status_code == 200


def test_two_pollers_never_get_the_same_task(api: httpx.Client) -> None:
    """Two concurrent pollers share the tasks: every task is handed out exactly once."""
    ids = [start(api, "hp_chain", n) for n in range(12)]
    url = str(api.base_url)
    with (
        Poller(url, "hp_step", "w-a", increment) as first,
        Poller(url, "hp_step", "w-b", increment) as second,
    ):
        runs = all_completed(api, ids)
    assert [run["output"]["n"] for run in runs] == [n + 3 for n in range(12)]
    seen = first.seen + second.seen
    assert len(seen) == len(set(seen)) == 36


def test_kafka_worker_and_http_poller_side_by_side(api: httpx.Client, topics: Settings) -> None:
    """A Kafka-native worker and an HTTP poller of one task type both get tasks; all complete."""
    worker = Worker(name="side")

    @worker.task("hp_either")
    def either(_: Json) -> Json:
        return {"by": "kafka"}

    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(topics,), kwargs={"stop": stop})
    thread.start()
    by: set[str] = set()
    try:
        with Poller(str(api.base_url), "hp_either", "w-http", lambda _: {"by": "http"}):
            for _ in range(10):  # until both group members own partitions
                ids = [start(api, "hp_side") for _ in range(12)]
                by |= {run["output"]["by"] for run in all_completed(api, ids)}
                if by == {"kafka", "http"}:
                    break
    finally:
        stop.set()
        thread.join(30)
    assert by == {"kafka", "http"}


def test_a_lease_never_updated_is_released(
    start_api: Callable[[], httpx.Client], topics: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task polled and never updated is released after the lease time; its offset commits."""
    monkeypatch.setenv("ORCH_POLL_LEASE_S", "1.5")
    api = start_api()
    workflow_id = start(api, "hp_side")

    def polled() -> list[Json]:
        found = api.get("/api/tasks/poll/batch/hp_either", params={"timeout": 500}).json()
        assert found, "nothing to poll yet"
        return found  # type: ignore[no-any-return]

    (task,) = assert_eventually(polled, timeout=30)
    assert task["responseTimeoutSeconds"] == 1
    assert committed_total(topics, "hp_either") == 0
    assert_eventually(lambda: committed_total(topics, "hp_either") == 1, timeout=30)
    assert status(api, workflow_id)["status"] == "RUNNING"
    # A late update of the released lease is still published for its attempt.
    assert api.post("/api/tasks", json=complete(task, {"by": "late"})).status_code == 200
    assert all_completed(api, [workflow_id])[0]["output"] == {"by": "late"}


def test_an_api_polls_no_more_task_types_than_its_limit(
    start_api: Callable[[], httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each polled task type costs a consumer: past ORCH_POLL_MAX_TASK_TYPES a poll is a 409."""
    monkeypatch.setenv("ORCH_POLL_MAX_TASK_TYPES", "1")
    api = start_api()
    first = api.get("/api/tasks/poll/batch/hp_one", params={"timeout": 100})
    assert first.status_code == 200, first.text
    again = api.get("/api/tasks/poll/batch/hp_one", params={"timeout": 100})
    assert again.status_code == 200, again.text
    refused = api.get("/api/tasks/poll/batch/hp_two", params={"timeout": 100})
    assert refused.status_code == 409, refused.text
    assert "ORCH_POLL_MAX_TASK_TYPES" in refused.json()["message"]


def test_update_of_an_unknown_task_is_a_404_and_publishes_nothing(
    api: httpx.Client, topics: Settings
) -> None:
    """An update naming no task (or no run) is a 404, and no result reaches the log."""
    workflow_id = start(api, "hp_side")
    assert_eventually(lambda: status(api, workflow_id)["tasks"], timeout=30)
    before = results_written(topics)
    body = {"workflowInstanceId": workflow_id, "taskId": "no-such-task", "status": "COMPLETED"}
    unknown_task = api.post("/api/tasks", json=body)
    assert unknown_task.status_code == 404, unknown_task.text
    unknown_run = api.post("/api/tasks", json={**body, "workflowInstanceId": "no-such-run"})
    assert unknown_run.status_code == 404, unknown_run.text
    assert results_written(topics) == before
