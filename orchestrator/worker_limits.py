"""How much a worker runs at once and how fast it starts tasks, both changeable while it runs.

:class:`Slots` bounds the handler calls in flight across every task type of a worker; its size
can change at any time (:meth:`Slots.resize`). A :class:`TokenBucket` per task type bounds how
many of its tasks start per second. :class:`WorkerLimits` holds both and applies the
``[worker]`` section of a live configuration file.

Token accounting: a task type's view of the slots (:meth:`Slots.rate_limited`) takes one token
with each slot it reserves and gives the token back with the slot, and a handler that ran
spends one token just before its slot goes back (:func:`spending`). So a reservation the
consumer did not use costs nothing and each started task costs exactly one token, in whatever
order the consumer reserves and releases. A task type waiting for tokens holds no slots, so it
never starves the other task types of the worker.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.telemetry import get_logger
from orchestrator.worker_handlers import Handler

if TYPE_CHECKING:
    from orchestrator.live_config import LiveConfig

__all__ = ["Slots", "TokenBucket", "WorkerLimits", "spending"]

_log = get_logger("orchestrator.worker")


class _Pool:
    """The free-slot counter every view of one :class:`Slots` shares."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self.changed = threading.Condition()


class Slots:
    """A counter of free handler slots that consumers reserve in batches and jobs give back."""

    def __init__(self, size: int) -> None:
        _check_size(size)
        self._pool = _Pool(size)
        self._bucket: TokenBucket | None = None

    def rate_limited(self, bucket: TokenBucket) -> Slots:
        """A view of these slots that also takes a token of ``bucket`` per slot it reserves."""
        view = Slots.__new__(Slots)
        view._pool, view._bucket = self._pool, bucket
        return view

    def reserve(self, most: int, timeout: float) -> int:
        """Take up to ``most`` free slots, waiting up to ``timeout`` s for one; return how many."""
        if self._bucket is None:
            return self._take(most, timeout)
        deadline = time.monotonic() + timeout
        tokens = self._bucket.take(most, timeout)
        if tokens == 0:
            return 0
        taken = self._take(tokens, max(0.0, deadline - time.monotonic()))
        self._bucket.give_back(tokens - taken)
        return taken

    def _take(self, most: int, timeout: float) -> int:
        pool = self._pool
        with pool.changed:
            if pool.free <= 0:
                pool.changed.wait(timeout)
            taken = max(0, min(most, pool.free))
            pool.free -= taken
            return taken

    def release(self, count: int = 1) -> None:
        """Give back ``count`` slots; a negative count takes slots beyond the bound."""
        if count == 0:
            return
        pool = self._pool
        with pool.changed:
            pool.free += count
            if count > 0:
                pool.changed.notify_all()
        if self._bucket is not None:
            self._bucket.give_back(count)

    def resize(self, size: int) -> None:
        """Change the bound; calls in flight beyond a smaller bound finish, no new one starts."""
        _check_size(size)
        pool = self._pool
        with pool.changed:
            pool.free += size - pool.size
            pool.size = size
            pool.changed.notify_all()

    @property
    def size(self) -> int:
        """The bound: how many handler calls may be in flight."""
        return self._pool.size

    @property
    def free(self) -> int:
        """How many slots are free now."""
        return self._pool.free


def _check_size(size: int) -> None:
    if size < 1:
        raise ValueError(f"concurrency must be at least 1, got {size}")


class TokenBucket:
    """Task starts of one task type: ``rate`` tokens a second, one second's worth banked.

    A rate of 0 means unlimited. The level goes below zero when tasks start beyond the bound
    (a record that arrived while fetching was paused), and later starts wait that much longer.
    """

    def __init__(self, rate: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        self._rate = 0.0
        self._level = 0.0
        self._updated = clock()
        self.set_rate(rate)

    @property
    def rate(self) -> float:
        """Tokens per second (0: unlimited)."""
        return self._rate

    def set_rate(self, rate: float) -> None:
        """Change the rate; a bucket that was unlimited starts full."""
        if rate < 0 or not math.isfinite(rate):
            raise ValueError(f"a rate limit must be 0 (unlimited) or positive, got {rate}")
        with self._changed:
            self._refill()
            was_unlimited, self._rate = self._rate == 0, rate
            capacity = self._capacity()
            self._level = capacity if was_unlimited else min(self._level, capacity)
            self._changed.notify_all()

    def take(self, most: int, timeout: float) -> int:
        """Take up to ``most`` whole tokens, waiting up to ``timeout`` s for one; say how many."""
        deadline = self._clock() + timeout
        with self._changed:
            while True:
                if self._rate == 0:
                    return most
                self._refill()
                if self._level >= 1:
                    taken = min(most, int(self._level))
                    self._level -= taken
                    return taken
                wait = min(deadline - self._clock(), (1 - self._level) / self._rate)
                if wait <= 0:
                    return 0
                self._changed.wait(wait)

    def give_back(self, count: int) -> None:
        """Return ``count`` tokens taken and not used (a negative count takes them as debt)."""
        with self._changed:
            if self._rate == 0 or count == 0:
                return
            self._refill()
            self._level = min(self._level + count, self._capacity())
            if count > 0:
                self._changed.notify_all()

    def spend(self, count: int = 1) -> None:
        """Use up ``count`` tokens: a task started (see the module's note on accounting)."""
        self.give_back(-count)

    def _capacity(self) -> float:
        return max(1.0, self._rate)

    def _refill(self) -> None:
        now = self._clock()
        if self._rate > 0:
            self._level = min(self._capacity(), self._level + (now - self._updated) * self._rate)
        self._updated = now


def spending(handler: Handler, bucket: TokenBucket) -> Handler:
    """``handler`` spending one token of ``bucket`` as its function returns or raises."""
    function = handler.function
    if handler.is_async:

        async def call_async(*args: Any) -> Any:
            try:
                return await function(*args)
            finally:
                bucket.spend()

        return dataclasses.replace(handler, function=call_async)

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        finally:
            bucket.spend()

    return dataclasses.replace(handler, function=call)


class WorkerLimits:
    """A running worker's concurrency bound and per task type rate limits, changeable live.

    ``concurrency`` is also the bound a configuration file without ``worker.concurrency`` means.
    """

    def __init__(
        self,
        concurrency: int,
        rate_limit_per_second: float = 0.0,
        rate_limits: Mapping[str, float] | None = None,
    ) -> None:
        self.slots = Slots(concurrency)
        self._default_concurrency = concurrency
        self._lock = threading.Lock()
        self._default_rate = rate_limit_per_second
        self._rates = dict(rate_limits or {})
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, task_type: str) -> TokenBucket:
        """The token bucket of ``task_type``'s starts (made on first use)."""
        with self._lock:
            bucket = self._buckets.get(task_type)
            if bucket is None:
                bucket = TokenBucket(self._rates.get(task_type, self._default_rate))
                self._buckets[task_type] = bucket
            return bucket

    def slots_for(self, task_type: str) -> Slots:
        """The slots as ``task_type``'s consumer reserves them: shared, and rate limited."""
        return self.slots.rate_limited(self.bucket(task_type))

    def update(
        self,
        *,
        concurrency: int | None = None,
        rate_limit_per_second: float = 0.0,
        rate_limits: Mapping[str, float] | None = None,
    ) -> None:
        """Set the bound (None: the one given at construction) and every task type's rate."""
        size = self._default_concurrency if concurrency is None else concurrency
        with self._lock:
            self._default_rate = rate_limit_per_second
            self._rates = dict(rate_limits or {})
            rates = {t: self._rates.get(t, self._default_rate) for t in self._buckets}
            buckets = dict(self._buckets)
        before = (self.slots.size, {t: b.rate for t, b in buckets.items()})
        self.slots.resize(size)
        for task_type, bucket in buckets.items():
            bucket.set_rate(rates[task_type])
        if before != (size, rates):
            _log.info("worker limits changed", concurrency=size, rate_limits=rates)

    def apply(self, config: LiveConfig) -> None:
        """Apply the ``[worker]`` section of a live configuration."""
        section = config.worker
        self.update(
            concurrency=section.concurrency,
            rate_limit_per_second=section.rate_limit_per_second,
            rate_limits=section.rate_limits,
        )
