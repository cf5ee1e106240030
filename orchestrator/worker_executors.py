"""Where a worker's handlers run: daemon threads for sync handlers, one asyncio loop for async ones.

:class:`Slots` bounds how many handler calls are in flight across every task type of a worker.
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

__all__ = ["HandlerLoop", "HandlerThreads", "Slots"]

Job = Callable[[], None]
AsyncJob = Callable[[], Coroutine[Any, Any, None]]

_log = get_logger("orchestrator.worker")


class Slots:
    """A counter of free handler slots that consumers reserve in batches and jobs give back."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"concurrency must be at least 1, got {size}")
        self.size = size
        self._free = size
        self._changed = threading.Condition()

    def reserve(self, most: int, timeout: float) -> int:
        """Take up to ``most`` free slots, waiting up to ``timeout`` s for one; return how many."""
        with self._changed:
            if self._free <= 0:
                self._changed.wait(timeout)
            taken = max(0, min(most, self._free))
            self._free -= taken
            return taken

    def release(self, count: int = 1) -> None:
        """Give back ``count`` slots; a negative count takes slots beyond the bound."""
        if count == 0:
            return
        with self._changed:
            self._free += count
            if count > 0:
                self._changed.notify_all()

    @property
    def free(self) -> int:
        """How many slots are free now."""
        return self._free


class HandlerThreads:
    """A fixed set of daemon threads running jobs from one queue, in submission order."""

    def __init__(self, size: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{index}", daemon=True)
            for index in range(size)
        ]

    def start(self) -> None:
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        """Run ``job`` on the next free thread."""
        self._jobs.put(job)

    def shutdown(self) -> None:
        """Let each thread exit after its current job; never waits for a running one."""
        for _ in self._threads:
            self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except BaseException:  # noqa: BLE001 - a job must not take its thread down with it
                _log.exception("worker job raised")


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
