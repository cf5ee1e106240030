"""Where a worker's handlers run: daemon threads for sync handlers, one asyncio loop for async ones.

:class:`Slots` (from :mod:`orchestrator.worker_limits`) bounds how many handler calls are in
flight across every task type of a worker; the thread pool grows to match a larger bound.
Threads are daemons and the loop's tasks are cancelled on shutdown, so a handler that outlives
the grace period is abandoned and never keeps the process alive.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from orchestrator.telemetry import get_logger
from orchestrator.worker_limits import Slots

__all__ = ["HandlerLoop", "HandlerThreads", "Slots"]

Job = Callable[[], None]
AsyncJob = Callable[[], Coroutine[Any, Any, None]]

_log = get_logger("orchestrator.worker")


class HandlerThreads:
    """Daemon threads running jobs from one queue, in submission order.

    It starts with ``size`` threads and adds one whenever a job would otherwise wait for a
    thread, so a bound raised while the worker runs gets the threads it needs.
    """

    def __init__(self, size: int, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy = 0  # jobs submitted and not finished
        self._started = False
        self._threads = [self._thread(index) for index in range(size)]

    def _thread(self, index: int) -> threading.Thread:
        return threading.Thread(target=self._serve, name=f"{self._name}-{index}", daemon=True)

    def start(self) -> None:
        """Start the threads."""
        with self._lock:
            self._started = True
            for thread in self._threads:
                thread.start()

    def submit(self, job: Job) -> None:
        """Run ``job`` on the next free thread (a new one if none is free)."""
        with self._lock:
            self._busy += 1
            if self._started and self._busy > len(self._threads):
                thread = self._thread(len(self._threads))
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def shutdown(self) -> None:
        """Let each thread exit after its current job; never waits for a running one."""
        with self._lock:
            for _ in self._threads:
                self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except BaseException:  # noqa: BLE001 - a job must not take its thread down with it
                _log.exception("worker job raised")
            finally:
                with self._lock:
                    self._busy -= 1


class HandlerLoop:
    """One asyncio event loop in a daemon thread that runs async handler jobs."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        """Start the loop's thread."""
        self._thread.start()

    def submit(self, job: AsyncJob) -> None:
        """Run the coroutine ``job()`` as a task on the loop; callable from any thread."""
        self._loop.call_soon_threadsafe(self._spawn, job)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Cancel the tasks still running, stop the loop and close it once its thread ends."""
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._cancel_all)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def _spawn(self, job: AsyncJob) -> None:
        task = self._loop.create_task(job())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()
        # Stopping on the next iteration lets the cancelled tasks run their cleanup first.
        self._loop.call_soon(self._loop.stop)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
