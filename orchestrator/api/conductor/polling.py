"""HTTP task polling over Kafka: Conductor workers take task commands through the API.

Per task type the API joins the consumer group ``<prefix>worker.<type>`` of the Kafka-native
workers (:class:`Feed`), so each command goes to exactly one of them or to one HTTP poller. A
thread per type keeps the consumer polled (group membership, ``max.poll.interval.ms``) into a
bounded buffer, pausing its partitions while the buffer is full. A poll hands each buffered
command out once, as Conductor's Task, and records a :class:`Lease`.

An update of a leased task is published as the leased attempt's result without consulting the
read model; once the broker acknowledged it, the command's offset is done, and only the
contiguous prefix of done offsets is committed (:class:`OffsetTracker`). IN_PROGRESS keeps the
lease and renews it. A lease not updated within ``lease_s`` is released: its offset counts as
done, and the engine's response timeout, if the task has one, schedules a retry, which arrives
as a new command. A late update of a released lease is still published for its attempt; the
engine ignores it if that attempt is stale.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request

from orchestrator.api.conductor.feed import Feed, Lease, PollingConfig
from orchestrator.api.conductor.shapes import iteration_of
from orchestrator.api.conductor.updates import TaskUpdate
from orchestrator.api.publisher import Publisher
from orchestrator.config import Settings
from orchestrator.engine.records import ExecuteTask, TaskResult
from orchestrator.errors import RequestConflictError
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics
from orchestrator.telemetry import get_logger
from orchestrator.worker_handlers import picked_up

__all__ = ["Bridge", "Lease", "PollingConfig", "get_bridge"]

Json = Any
_log = get_logger("orchestrator.api.polling")


class Bridge:
    """The API's HTTP polling: a :class:`Feed` per task type, started on its first poll."""

    def __init__(
        self, settings: Settings, publisher: Publisher, config: PollingConfig | None = None
    ) -> None:
        self.settings = settings
        self.config = config or PollingConfig()
        self._topics = Topics(settings.topic_prefix)
        self._publisher = publisher
        self._feeds: dict[str, Feed] = {}
        self._starting = asyncio.Lock()

    async def poll(
        self,
        task_type: str,
        *,
        count: int,
        timeout_s: float,
        worker_id: str,
        domain: str | None = None,
        namespace: str | None = None,
    ) -> list[dict[str, Json]]:
        """Up to ``count`` tasks of ``task_type`` as Conductor Tasks, each handed out once."""
        feed = await self._feed(task_type)
        handouts = await feed.take(count, timeout_s, namespace)
        acks = [picked_up(h.task, worker_id) for h in handouts if h.task.ack]
        if acks:  # tasks with a pollTimeoutSeconds: say they were picked up, as workers do
            sent = await asyncio.gather(*map(self._send, acks), return_exceptions=True)
            for failure in (s for s in sent if isinstance(s, BaseException)):
                _log.warning("pick-up not published", task_type=task_type, error=str(failure))
        now = int(time.time() * 1000)
        lease_s = int(self.config.lease_s)
        return [task_json(h.task, worker_id, domain, lease_s, now) for h in handouts]

    def lease(self, workflow_id: str, key: str) -> Lease | None:
        """The lease of task id or reference name ``key`` of ``workflow_id``, if one was made."""
        for feed in list(self._feeds.values()):
            found = feed.find(workflow_id, key)
            if found is not None:
                return found
        return None

    async def report(self, lease: Lease, update: TaskUpdate) -> None:
        """Publish ``update`` for the leased attempt; settle the lease once acknowledged."""
        result = TaskResult(
            workflow_id=lease.workflow_id,
            task_id=lease.task_id,
            attempt=lease.attempt,
            status=update.status,
            output=update.output if update.output is not None else {},
            reason=update.reason,
            worker_id=update.worker_id,
            callback_after_seconds=update.callback_after_seconds,
        )
        await self._send(result)
        feed = self._feeds.get(lease.task_type)
        if feed is not None:
            feed.settled(lease, update.status)

    async def _send(self, result: TaskResult) -> None:
        partition = partition_for(result.workflow_id, self.settings.partitions)
        await self._publisher.send(
            self._topics.results, result.workflow_id, result, partition=partition
        )

    async def _feed(self, task_type: str) -> Feed:
        self._topics.tasks(task_type)  # a TopicNameError (400) for a name no topic can carry
        feed = self._feeds.get(task_type)
        if feed is not None:
            return feed
        async with self._starting:
            if task_type not in self._feeds and len(self._feeds) >= self.config.max_task_types:
                raise RequestConflictError(
                    f"this API already polls {len(self._feeds)} task types, its limit "
                    f"(ORCH_POLL_MAX_TASK_TYPES); poll {task_type!r} through another API "
                    "process or raise the limit"
                )
            if task_type not in self._feeds:
                loop = asyncio.get_running_loop()
                self._feeds[task_type] = await asyncio.to_thread(
                    Feed, self.settings, task_type, self.config, loop
                )
        return self._feeds[task_type]

    def close(self) -> None:
        """Stop every feed; leased commands not yet done stay uncommitted and come back."""
        for feed in self._feeds.values():
            feed.close()
        self._feeds.clear()


def task_json(
    task: ExecuteTask, worker_id: str, domain: str | None, lease_s: int, now: int
) -> dict[str, Json]:
    """Conductor's Task for a command handed to ``worker_id``: IN_PROGRESS from ``now``.

    ``responseTimeoutSeconds`` is the bridge's lease time: an SDK worker that extends leases
    sends IN_PROGRESS before it runs out.
    """
    return {
        "taskId": task.task_id,
        "taskType": task.task_type,
        "taskDefName": task.task_type,
        "referenceTaskName": task.ref_name,
        "status": "IN_PROGRESS",
        "inputData": task.input if isinstance(task.input, dict) else {},
        "outputData": {},
        "retryCount": task.attempt - 1,
        "seq": 0,
        "pollCount": 1,
        "scheduledTime": task.scheduled_at,
        "startTime": now,
        "endTime": 0,
        "updateTime": now,
        "workflowInstanceId": task.workflow_id,
        "workflowType": task.workflow_name,
        "workerId": worker_id,
        "domain": domain,
        "callbackAfterSeconds": 0,
        "responseTimeoutSeconds": lease_s,
        "iteration": iteration_of(task.task_id),
        "retried": False,
        "executed": False,
        "workflowPriority": 0,
    }


async def get_bridge(request: Request) -> Bridge:
    """The application's polling bridge."""
    bridge: Bridge = request.app.state.bridge
    return bridge
