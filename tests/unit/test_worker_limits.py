"""Worker limits that change live: resizable slots, token buckets, and their accounting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from orchestrator.engine.records import ExecuteTask, ResultStatus
from orchestrator.live_config import parse_live_config
from orchestrator.worker_executors import HandlerThreads
from orchestrator.worker_handlers import Handler
from orchestrator.worker_limits import Slots, TokenBucket, WorkerLimits, spending
from tests.helpers import assert_eventually


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# Slots -----------------------------------------------------------------------------------------


def test_growing_the_bound_frees_slots_and_wakes_a_waiting_reservation() -> None:
    """resize(4) on a full bound of 2 hands two new slots to a reservation already waiting."""
    slots = Slots(2)
    assert slots.reserve(10, 0) == 2
    threading.Timer(0.05, slots.resize, args=(4,)).start()
    assert slots.reserve(10, 5.0) == 2
    assert slots.size == 4


def test_shrinking_the_bound_lets_calls_in_flight_finish_and_starts_none() -> None:
    """Below the calls in flight, nothing is reserved until enough of them finish."""
    slots = Slots(4)
    assert slots.reserve(4, 0) == 4
    slots.resize(1)
    assert slots.free == -3
    slots.release(3)
    assert slots.reserve(1, 0) == 0
    slots.release(1)
    assert slots.reserve(5, 0) == 1


def test_a_rate_limited_view_shares_the_bound() -> None:
    """Slots taken through a task type's view are gone for every other view."""
    slots = Slots(3)
    view = slots.rate_limited(TokenBucket(0))
    assert view.reserve(2, 0) == 2
    assert slots.reserve(5, 0) == 1
    view.release(2)
    assert slots.free == 2


def test_a_view_reserves_no_more_slots_than_it_has_tokens() -> None:
    """With 2 tokens banked and 8 free slots, a view takes 2 and leaves 6 for the others."""
    clock = Clock()
    slots = Slots(8)
    view = slots.rate_limited(TokenBucket(2, clock))
    assert view.reserve(10, 0) == 2
    assert slots.free == 6
    assert view.reserve(10, 0) == 0
    assert slots.free == 6, "a task type waiting for tokens holds no slots"


def test_each_started_task_costs_one_token_and_unused_reservations_none() -> None:
    """Reserve 5, use 2 (spent as they finish), give 3 back: 3 tokens are left."""
    clock = Clock()
    bucket = TokenBucket(5, clock)
    view = Slots(10).rate_limited(bucket)
    assert view.reserve(10, 0) == 5
    view.release(3)  # the consumer fetched only two records
    for _ in range(2):  # each job: the handler returns (spend), then its slot goes back
        bucket.spend()
        view.release(1)
    assert bucket.take(10, 0) == 3


def test_records_run_beyond_the_bound_become_token_debt() -> None:
    """A negative release (records arriving while paused) takes tokens the bucket owes."""
    clock = Clock()
    bucket = TokenBucket(1, clock)
    view = Slots(1).rate_limited(bucket)
    view.release(-2)  # the one banked token and one owed
    clock.now += 1.0
    assert bucket.take(1, 0) == 0, "the debt is repaid first"
    clock.now += 1.0
    assert bucket.take(1, 0) == 1


# Token buckets ---------------------------------------------------------------------------------


def test_a_bucket_refills_at_its_rate_up_to_one_second_of_tokens() -> None:
    """Rate 4: four tokens banked at most; a quarter second brings one more."""
    clock = Clock()
    bucket = TokenBucket(4, clock)
    assert bucket.take(10, 0) == 4
    assert bucket.take(1, 0) == 0
    clock.now += 0.25
    assert bucket.take(10, 0) == 1
    clock.now += 60
    assert bucket.take(10, 0) == 4


def test_a_slow_rate_still_banks_one_token() -> None:
    """Rate 0.5: one token every two seconds."""
    clock = Clock()
    bucket = TokenBucket(0.5, clock)
    assert bucket.take(3, 0) == 1
    clock.now += 1.0
    assert bucket.take(3, 0) == 0
    clock.now += 1.0
    assert bucket.take(3, 0) == 1


def test_rate_zero_is_unlimited_and_ignores_accounting() -> None:
    """An unlimited bucket hands out whatever is asked; spending changes nothing."""
    bucket = TokenBucket(0)
    bucket.spend(1000)
    assert bucket.take(500, 0) == 500


def test_changing_the_rate_applies_at_once() -> None:
    """Unlimited to 2/s starts with a full bucket; 2/s to unlimited stops limiting."""
    clock = Clock()
    bucket = TokenBucket(0, clock)
    bucket.set_rate(2)
    assert bucket.take(10, 0) == 2
    assert bucket.take(10, 0) == 0
    bucket.set_rate(0)
    assert bucket.take(10, 0) == 10
    with pytest.raises(ValueError, match="rate limit"):
        bucket.set_rate(-1)


def test_take_waits_for_the_next_token() -> None:
    """A take with a timeout waits for the refill instead of returning empty."""
    bucket = TokenBucket(20)
    assert bucket.take(100, 0) == 20
    began = time.monotonic()
    assert bucket.take(1, 2.0) == 1
    assert 0.02 <= time.monotonic() - began < 1.0


# Spending handlers -----------------------------------------------------------------------------


def task() -> ExecuteTask:
    """A task command for the wrapped handlers."""
    return ExecuteTask(
        workflow_id="wf",
        task_id="t",
        task_type="send_email",
        attempt=1,
        ref_name="t",
        input={"n": 1},
        workflow_name="flow",
    )


def test_a_sync_handler_spends_one_token_when_it_returns_or_raises() -> None:
    """Both a result and a failure cost the task's token."""
    clock = Clock()
    bucket = TokenBucket(10, clock)

    def fail(_: object) -> None:
        raise ValueError("no")

    ok = spending(Handler.declare("send_email", lambda data: data), bucket)
    bad = spending(Handler.declare("send_email", fail), bucket)
    assert ok.run(task(), "w").status == ResultStatus.COMPLETED
    assert bad.run(task(), "w").status == ResultStatus.FAILED
    assert bucket.take(100, 0) == 8


def test_an_async_handler_spends_its_token_after_awaiting() -> None:
    """The async wrapper stays a coroutine function and spends once awaited."""
    clock = Clock()
    bucket = TokenBucket(3, clock)

    async def handle(data: dict[str, int], ctx: object) -> dict[str, int]:
        await asyncio.sleep(0)
        return data

    handler = spending(Handler.declare("send_email", handle), bucket)
    assert handler.is_async
    assert handler.wants_context
    result = asyncio.run(handler.run_async(task(), "w"))
    assert result.status == ResultStatus.COMPLETED
    assert bucket.take(100, 0) == 2


# WorkerLimits and threads ----------------------------------------------------------------------


def test_worker_limits_apply_a_live_configuration() -> None:
    """The [worker] section sets the bound and each task type's rate; unset means the default."""
    limits = WorkerLimits(concurrency=3)
    email, other = limits.bucket("send_email"), limits.bucket("other")
    limits.apply(
        parse_live_config(
            "[worker]\nconcurrency = 6\nrate_limit_per_second = 2\n"
            "[worker.rate_limits]\nsend_email = 5\n",
            "live.toml",
        )
    )
    assert limits.slots.size == 6
    assert (email.rate, other.rate) == (5, 2)
    assert limits.bucket("late").rate == 2, "a bucket made later gets the configured rate"
    limits.apply(parse_live_config("", "live.toml"))
    assert limits.slots.size == 3
    assert (email.rate, other.rate) == (0, 0)


def test_handler_threads_grow_with_the_jobs_in_flight() -> None:
    """One thread to start with; four blocking jobs get four threads and all run at once."""
    threads = HandlerThreads(1, "grow")
    threads.start()
    running = threading.Semaphore(0)
    release = threading.Event()

    def job() -> None:
        running.release()
        release.wait(5)

    try:
        for _ in range(4):
            threads.submit(job)
        assert_eventually(lambda: all(running.acquire(timeout=1) for _ in range(4)), timeout=5)
    finally:
        release.set()
        threads.shutdown()
