"""The worker's pure parts: offset tracking, handler declaration, output and error mapping."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from orchestrator.engine.records import ExecuteTask, ResultStatus
from orchestrator.errors import HandlerError
from orchestrator.worker import TaskContext, TerminalError, Worker
from orchestrator.worker_executors import Slots
from orchestrator.worker_handlers import Handler, error_result, normalize_output
from orchestrator.worker_offsets import OffsetTracker

TASK = ExecuteTask(
    workflow_id="wf-1",
    task_id="t-1",
    attempt=2,
    task_type="fetch",
    ref_name="fetch_ref",
    input={"x": 1},
    workflow_name="flow",
)


# Offsets ---------------------------------------------------------------------------------------


def test_out_of_order_completion_commits_only_the_contiguous_prefix() -> None:
    """Offsets finishing out of order advance the commit only past the done prefix."""
    tracker = OffsetTracker()
    tracker.assign([0])
    for offset in (10, 11, 12, 13):
        tracker.started(0, offset)
    tracker.done(0, 12)
    tracker.done(0, 11)
    assert tracker.committable() == {0: 10}
    tracker.done(0, 10)
    assert tracker.committable() == {0: 13}
    tracker.done(0, 13)
    assert tracker.committable() == {0: 14}


def test_committable_reports_only_moved_offsets() -> None:
    """An offset is reported once; nothing is reported until it moves again."""
    tracker = OffsetTracker()
    tracker.started(1, 0)
    assert tracker.committable() == {1: 0}
    assert tracker.committable() == {}
    tracker.done(1, 0)
    assert tracker.committable() == {1: 1}
    assert tracker.positions() == {1: 1}


def test_partitions_are_tracked_independently() -> None:
    """A stuck record holds back its own partition only."""
    tracker = OffsetTracker()
    tracker.assign([0, 1])
    tracker.started(0, 5)
    tracker.started(1, 7)
    tracker.started(1, 8)
    tracker.done(1, 7)
    tracker.done(1, 8)
    assert tracker.committable() == {0: 5, 1: 9}
    assert tracker.pending(0) == 1
    assert tracker.pending(1) == 0


def test_untracked_partitions_have_no_position() -> None:
    """A partition with nothing started has nothing to commit."""
    tracker = OffsetTracker()
    tracker.assign([3])
    assert tracker.position(3) is None
    assert tracker.committable() == {}


def test_revoked_partition_ignores_late_reports() -> None:
    """Reports about a revoked partition change nothing; a new assignment starts afresh."""
    tracker = OffsetTracker()
    tracker.assign([0])
    tracker.started(0, 4)
    tracker.revoke([0])
    tracker.done(0, 4)
    assert tracker.committable() == {}
    tracker.assign([0])
    tracker.started(0, 2)
    assert tracker.committable() == {0: 2}


def test_done_for_an_unknown_offset_is_ignored() -> None:
    """A late report for an offset not started in this assignment does not move the commit."""
    tracker = OffsetTracker()
    tracker.started(0, 3)
    tracker.done(0, 9)
    assert tracker.position(0) == 3


def test_positions_can_be_limited_to_some_partitions() -> None:
    """Committing on revocation touches only the revoked partitions, moved or not."""
    tracker = OffsetTracker()
    tracker.started(0, 1)
    tracker.started(1, 1)
    tracker.started(2, 1)
    assert tracker.committable() == {0: 1, 1: 1, 2: 1}
    tracker.done(1, 1)
    assert tracker.positions([0, 1, 7]) == {0: 1, 1: 2}


# Slots -----------------------------------------------------------------------------------------


def test_slots_bound_reservations_and_wake_on_release() -> None:
    """Reservations never exceed the free slots; a release wakes a waiting reservation."""
    slots = Slots(4)
    assert slots.reserve(10, 0) == 4
    assert slots.reserve(1, 0.01) == 0
    threading.Timer(0.05, slots.release, args=(2,)).start()
    assert slots.reserve(10, 5.0) == 2
    slots.release(-1)
    assert slots.free == -1
    assert slots.reserve(1, 0.01) == 0


def test_slots_reject_a_zero_bound() -> None:
    """Concurrency below one is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)


# Output normalisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "output"),
    [
        ({"a": 1}, {"a": 1}),
        ([1, 2], {"result": [1, 2]}),
        ("text", {"result": "text"}),
        (3.5, {"result": 3.5}),
        (False, {"result": False}),
        (None, {}),
    ],
)
def test_normalize_output(value: Any, output: Any) -> None:
    """A dict is the output; other JSON values are wrapped; None is an empty output."""
    assert normalize_output(value) == output


@pytest.mark.parametrize("value", [object(), {"a": {1, 2}}, {1: "non-string key"}])
def test_non_json_output_is_refused_with_a_clear_reason(value: Any) -> None:
    """A value the codec cannot write as JSON raises TypeError naming the problem."""
    with pytest.raises(TypeError, match="not JSON-serializable"):
        normalize_output(value)


# Handlers and error mapping --------------------------------------------------------------------


def test_sync_handler_output_becomes_a_completed_result() -> None:
    """A returned value is the COMPLETED result's output, with the task's identity."""
    handler = Handler.declare("fetch", lambda task_input: {"y": task_input["x"] + 1})
    result = handler.run(TASK, "w1")
    assert result.status is ResultStatus.COMPLETED
    assert result.output == {"y": 2}
    assert (result.workflow_id, result.task_id, result.attempt) == ("wf-1", "t-1", 2)
    assert result.worker_id == "w1"


def test_raised_exception_becomes_failed_with_type_and_message() -> None:
    """An exception gives FAILED with error_type = class name and reason = message."""

    def broken(task_input: Any) -> None:
        raise KeyError("missing")

    with capture_logs() as logs:
        result = Handler.declare("fetch", broken).run(TASK, "w1")
    assert result.status is ResultStatus.FAILED
    assert result.error_type == "KeyError"
    assert result.reason == "'missing'"
    assert logs[0]["workflow_id"] == "wf-1"
    assert logs[0]["task_type"] == "fetch"


def test_terminal_error_fails_for_good() -> None:
    """A TerminalError (or a subclass) gives FAILED_WITH_TERMINAL_ERROR."""

    class BadInputError(TerminalError):
        pass

    result = error_result(TASK, BadInputError("no such customer"), "w1")
    assert result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR
    assert result.error_type == "BadInputError"
    assert result.reason == "no such customer"


def test_exception_without_message_still_has_a_reason() -> None:
    """An empty message is replaced by one naming the exception class."""
    result = error_result(TASK, RuntimeError(), "w1")
    assert result.reason == "RuntimeError raised with no message"


def test_non_json_output_fails_the_task() -> None:
    """A handler returning something unserializable fails with a TypeError reason."""
    result = Handler.declare("fetch", lambda task_input: {"when": object()}).run(TASK, "w1")
    assert result.status is ResultStatus.FAILED
    assert result.error_type == "TypeError"
    assert "not JSON-serializable" in (result.reason or "")


def test_context_is_passed_to_two_argument_handlers() -> None:
    """A second parameter receives the TaskContext of the command."""
    seen: list[TaskContext] = []

    def handler(task_input: Any, ctx: TaskContext) -> str:
        seen.append(ctx)
        return ctx.ref_name

    result = Handler.declare("fetch", handler).run(TASK, "w1")
    assert result.output == {"result": "fetch_ref"}
    assert seen[0] == TaskContext(
        workflow_id="wf-1",
        task_id="t-1",
        task_type="fetch",
        attempt=2,
        ref_name="fetch_ref",
        workflow_name="flow",
    )


def test_async_handler_runs_and_maps_errors() -> None:
    """An async handler is detected; its output and its exceptions map like a sync one's."""

    async def ok(task_input: Any) -> int:
        await asyncio.sleep(0)
        return 7

    async def broken(task_input: Any, ctx: TaskContext) -> None:
        raise ValueError(f"bad {ctx.task_id}")

    good = Handler.declare("fetch", ok)
    assert good.is_async
    assert asyncio.run(good.run_async(TASK, "w1")).output == {"result": 7}
    failed = asyncio.run(Handler.declare("fetch", broken).run_async(TASK, "w1"))
    assert (failed.status, failed.error_type, failed.reason) == (
        ResultStatus.FAILED,
        "ValueError",
        "bad t-1",
    )


# Registration ----------------------------------------------------------------------------------


def test_registration_is_per_instance() -> None:
    """Two workers register the same task type independently; the decorator returns the function."""
    first, second = Worker(name="a"), Worker(name="b")

    def handler(task_input: Any) -> None:
        return None

    assert first.task("fetch")(handler) is handler
    second.task("fetch")(handler)
    assert first.task_types == ("fetch",)
    assert second.task_types == ("fetch",)


def test_duplicate_task_type_is_refused() -> None:
    """Registering a second handler for a task type raises HandlerError."""
    worker = Worker(name="a")
    worker.task("fetch")(lambda task_input: None)
    with pytest.raises(HandlerError, match="already has a handler"):
        worker.task("fetch")(lambda task_input: None)


@pytest.mark.parametrize(
    "function",
    [
        lambda: None,
        lambda a, b, c: None,
        lambda a, *, required: None,
    ],
)
def test_bad_signatures_are_refused(function: Any) -> None:
    """Handlers must take (input) or (input, ctx)."""
    with pytest.raises(HandlerError, match=r"must take \(input\) or \(input, ctx\)"):
        Handler.declare("fetch", function)


def test_task_type_must_be_a_legal_topic_suffix() -> None:
    """A task type that cannot name a topic is refused at registration."""
    with pytest.raises(HandlerError, match="may only contain"):
        Worker(name="a").task("bad type!")(lambda task_input: None)


def test_running_a_worker_without_handlers_is_refused() -> None:
    """run() on an empty worker raises before touching Kafka."""
    with pytest.raises(HandlerError, match="no task handlers"):
        Worker(name="empty").run(None, stop=threading.Event())  # type: ignore[arg-type]


def test_a_failed_commit_is_offered_again() -> None:
    """After a failed asynchronous commit, the same position is committable again."""
    from orchestrator.worker_offsets import OffsetTracker

    tracker = OffsetTracker()
    tracker.assign([0])
    tracker.started(0, 5)
    tracker.done(0, 5)
    assert tracker.committable() == {0: 6}
    assert tracker.committable() == {}
    tracker.commit_failed([0])
    assert tracker.committable() == {0: 6}
