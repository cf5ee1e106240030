"""The worker runtime: register task handlers on a :class:`Worker`, then run it against Kafka.

```python
worker = Worker(name="examples")

@worker.task("fetch_data")
def fetch(input: dict) -> dict: ...

@worker.task("summarize")
async def summarize(input: dict, ctx: TaskContext) -> dict: ...

worker.run(settings, concurrency=8)
```

Each task type is one consumer group, ``<prefix>worker.<type>``, reading ``tasks.<type>``. A
handler's return value becomes the task's output; an exception fails the task (a
:class:`TerminalError` fails it for good). Results go to ``results`` on the workflow's partition,
and a task command's offset is committed only once its result is acknowledged (at least once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from orchestrator.config import Settings
from orchestrator.errors import HandlerError, TerminalError
from orchestrator.log.kafka import admin_client
from orchestrator.log.topics import ensure_task_topic
from orchestrator.telemetry import get_logger
from orchestrator.worker_consumer import Shared, TaskConsumer, health_port
from orchestrator.worker_executors import HandlerLoop, HandlerThreads, Slots
from orchestrator.worker_handlers import Handler, InProgress, TaskContext
from orchestrator.worker_limits import WorkerLimits, spending
from orchestrator.worker_publisher import Publisher

__all__ = ["InProgress", "TaskContext", "TerminalError", "Worker", "WorkerLimits"]

F = TypeVar("F", bound=Callable[..., object])

DEFAULT_CONCURRENCY = 8
DEFAULT_GRACE_PERIOD_S = 10.0
_STOP_POLL_S = 0.1

_log = get_logger("orchestrator.worker")


class Worker:
    """A named set of task handlers; :meth:`run` serves them, one consumer group per task type.

    Handlers are registered on the instance with :meth:`task`; there is no global registry, so
    several workers can live in one process (and one test).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: dict[str, Handler] = {}

    @property
    def task_types(self) -> tuple[str, ...]:
        """The task types this worker handles, in registration order."""
        return tuple(self._handlers)

    def task(self, task_type: str) -> Callable[[F], F]:
        """Register the decorated function as the handler of ``task_type`` (a task's ``name``).

        The handler takes the task input, and optionally a :class:`TaskContext` second. Sync
        handlers run on a thread pool, ``async def`` handlers on an asyncio loop. Raises
        :class:`HandlerError` for a bad signature or a task type registered twice.
        """

        def register(function: F) -> F:
            if task_type in self._handlers:
                raise HandlerError(f"worker {self.name!r} already has a handler for {task_type!r}")
            self._handlers[task_type] = Handler.declare(task_type, function)
            return function

        return register

    def run(
        self,
        settings: Settings,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        limits: WorkerLimits | None = None,
        stop: threading.Event | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD_S,
    ) -> None:
        """Serve every registered task type until ``stop`` is set; block until shut down.

        At most ``concurrency`` handler calls run at once across all task types; ``limits``
        instead gives a bound and per task type rate limits that may change while the worker
        runs (:meth:`WorkerLimits.update`, or a live configuration file). Without a
        ``stop`` event, SIGTERM and SIGINT stop the worker (main thread only). On stop, fetching
        ends, running handlers get ``grace_period`` seconds to finish and publish, finished
        offsets are committed and the consumers leave their groups; handlers still running are
        abandoned uncommitted, so their tasks are re-delivered to another worker.
        """
        if not self._handlers:
            raise HandlerError(f"worker {self.name!r} has no task handlers to run")
        limits = limits or WorkerLimits(concurrency)
        with _stop_event(stop) as stop_event:
            self._serve(settings, limits, stop_event, grace_period)

    def _serve(
        self, settings: Settings, limits: WorkerLimits, stop: threading.Event, grace_period: float
    ) -> None:
        admin = admin_client(settings)
        for task_type in self._handlers:
            ensure_task_topic(admin, settings, task_type)
        shared = self._shared(settings, limits.slots)
        consumers = [
            TaskConsumer(
                dataclasses.replace(shared, slots=limits.slots_for(task_type)),
                spending(handler, limits.bucket(task_type)),
            )
            for task_type, handler in self._handlers.items()
        ]
        _log.info(
            "worker started",
            worker=self.name,
            worker_id=shared.worker_id,
            task_types=list(self._handlers),
            concurrency=limits.slots.size,
        )
        try:
            with health_port(settings, consumers):
                _run_consumers(consumers, stop, grace_period)
        finally:
            shared.publisher.producer.flush(_STOP_POLL_S)
            if shared.threads is not None:
                shared.threads.shutdown()
            if shared.loop is not None:
                shared.loop.shutdown()
            _log.info("worker stopped", worker=self.name)

    def _shared(self, settings: Settings, slots: Slots) -> Shared:
        handlers = self._handlers.values()
        threads = (
            HandlerThreads(slots.size, f"{self.name}-handler")
            if any(not h.is_async for h in handlers)
            else None
        )
        loop = HandlerLoop(f"{self.name}-loop") if any(h.is_async for h in handlers) else None
        for executor in (threads, loop):
            if executor is not None:
                executor.start()
        return Shared(
            settings=settings,
            publisher=Publisher(settings),
            slots=slots,
            threads=threads,
            loop=loop,
            worker_id=f"{self.name}@{socket.gethostname()}/{os.getpid()}",
        )


def _run_consumers(
    consumers: list[TaskConsumer], stop: threading.Event, grace_period: float
) -> None:
    """Run each consumer on its own thread until ``stop`` or a consumer's failure; re-raise it."""
    halt = threading.Event()
    failures: list[BaseException] = []

    def serve(consumer: TaskConsumer) -> None:
        try:
            consumer.run(halt, grace_period)
        except BaseException as exc:  # noqa: BLE001 - re-raised by run() in the caller's thread
            _log.exception("task consumer failed; stopping the worker", topic=consumer.topic)
            failures.append(exc)
            halt.set()

    threads = [
        threading.Thread(target=serve, args=(consumer,), name=f"consumer-{consumer.topic}")
        for consumer in consumers
    ]
    for thread in threads:
        thread.start()
    while not halt.is_set():
        if stop.wait(_STOP_POLL_S):
            halt.set()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@contextlib.contextmanager
def _stop_event(stop: threading.Event | None) -> Iterator[threading.Event]:
    """``stop`` itself, or a new event that SIGTERM and SIGINT set while the block runs."""
    if stop is not None:
        yield stop
        return
    if threading.current_thread() is not threading.main_thread():
        raise ValueError("pass stop= to run a worker outside the main thread (no signals there)")
    event = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        _log.info("stop requested", signal=signal.Signals(signum).name)
        event.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
