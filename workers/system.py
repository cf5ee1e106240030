"""Conductor's system tasks HTTP, KAFKA_PUBLISH and EVENT, served as ordinary worker tasks.

The engine schedules them like SIMPLE tasks: the command arrives on ``tasks.<TYPE>`` with the
task's resolved ``inputParameters`` as input. Run them with ``orchestrator worker workers.system``.

Input/output contract of each task:

- ``HTTP`` (async; one shared ``httpx.AsyncClient`` per event loop)
    in:  {"http_request": {"uri": str, "method": str = "GET", "headers": {name: value},
          "body": JSON value or str, "accept": str = "application/json",
          "contentType": str = "application/json", "connectionTimeOut": ms = 10000,
          "readTimeOut": ms = 60000}}; the same keys at the top level of the input also work.
          A timeout of 0 means no limit.
    out: {"response": {"statusCode": int, "reasonPhrase": str, "headers": {name: [str, ...]},
          "body": parsed JSON when the response is JSON, else text; null when empty}}
    A non-2xx status fails the attempt with "HTTP 503 Service Unavailable from <uri>: <first
    200 characters of the body>", for good on a 4xx other than 408 and 429. No connection or a
    timeout fails the attempt, naming the uri and the limit. A missing or invalid uri, method,
    header or timeout fails the task for good, naming the field.
- ``KAFKA_PUBLISH``
    in:  {"kafka_request": {"topic": str, "value": JSON value (a string is sent as is),
          "key": str, "headers": {name: value}, "bootStrapServers": str}}
    out: {"topic": str, "partition": int, "offset": int} once the broker acknowledged.
    Publishes only to the engine's own cluster: a different ``bootStrapServers`` fails for good.
- ``EVENT``
    in:  {"sink": "kafka:<topic>", ...anything else}
    out: {"sink": str, "topic": str, "partition": int, "offset": int, "published": true}
    Publishes the input without ``sink`` (plus ``workflowInstanceId`` and ``workflowType``, as
    Conductor does) as JSON keyed by workflow id, creating the topic if needed. Any sink other
    than ``kafka:<topic>`` fails the task for good.

Neither publishing task writes to the engine's own topics (those under its prefix).

Settings: the publishing tasks use the cluster the worker itself runs against.
:meth:`SystemWorker.run` hands its ``settings`` to the publisher before serving, so the CLI's
``--bootstrap`` and ``ORCH_*`` variables (and a test's settings) reach it with no global state;
a handler called outside ``run`` reads ``Settings()`` from the environment.
"""

from __future__ import annotations

import threading

from orchestrator.config import Settings
from orchestrator.worker import DEFAULT_CONCURRENCY, DEFAULT_GRACE_PERIOD_S, Worker, WorkerLimits
from workers.http_task import HttpTask
from workers.publish_task import ClusterPublisher

__all__ = ["SystemWorker", "worker"]


class SystemWorker(Worker):
    """A :class:`Worker` of HTTP, KAFKA_PUBLISH and EVENT that publishes where it runs."""

    def __init__(self, name: str = "system") -> None:
        super().__init__(name)
        self.http = HttpTask()
        self.publisher = ClusterPublisher()
        self.task("HTTP")(self.http.call)
        self.task("KAFKA_PUBLISH")(self.publisher.kafka_publish)
        self.task("EVENT")(self.publisher.event)

    def run(
        self,
        settings: Settings,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        limits: WorkerLimits | None = None,
        stop: threading.Event | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD_S,
    ) -> None:
        """Serve the tasks as :meth:`Worker.run` does, publishing to the cluster of ``settings``.

        On the way out the publisher's records in flight get a moment to be acknowledged and
        the HTTP clients are dropped with the event loop they belonged to.
        """
        self.publisher.bind(settings)
        try:
            super().run(
                settings,
                concurrency=concurrency,
                limits=limits,
                stop=stop,
                grace_period=grace_period,
            )
        finally:
            self.publisher.close()
            self.http.close()


worker = SystemWorker()
