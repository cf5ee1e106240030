"""Waiting helpers for tests: poll a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def assert_eventually(
    fn: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition not met",
) -> T:
    """Call ``fn`` until it returns a truthy value or stops raising AssertionError; return it.

    Fails with ``message`` (and the last assertion, if any) when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    while True:
        try:
            result = fn()
        except AssertionError as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f": {last_error}" if last_error else ""
            raise AssertionError(f"{message} within {timeout:g} s{detail}") from last_error
        time.sleep(interval)
