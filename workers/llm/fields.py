"""Reading a task's input: each typed getter returns the field or fails for good naming it.

Input that cannot make a request is a :class:`TerminalError` ("LLM_CHAT_COMPLETE task input
'temperature' must be a number from 0 to 2, got 'hot'"): no retry makes it better.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import TerminalError

__all__ = ["Fields"]

Json = Any


class Fields:
    """The input object of one task of type ``task``, with getters that validate as they read."""

    def __init__(self, task_input: Json, task: str) -> None:
        if not isinstance(task_input, dict):
            raise TerminalError(f"{task} task input must be an object, got {_kind(task_input)}")
        self.values: dict[str, Json] = task_input
        self.task = task

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not null."""
        return self.values.get(key) is not None

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A non-empty string, or None when absent (an error when ``required``)."""
        value = self.values.get(key)
        if value is None or value == "":
            if required:
                raise self.error(key, "is missing")
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_kind(value)}")
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        """A number in [low, high], or None when absent."""
        value = self.values.get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.error(key, f"must be a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    def whole(self, key: str, low: int, high: int) -> int | None:
        """A whole number in [low, high] (``3.0`` counts), or None when absent."""
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key, f"must be a whole number from {low} to {high}, got {value!r}")
        return value

    def flag(self, key: str) -> bool:
        """A boolean; absent is False."""
        value = self.values.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings (a single string counts as one); absent is empty."""
        value = self.values.get(key)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise self.error(key, f"must be a string or a list of strings, got {_kind(value)}")
        return tuple(items)

    def objects(self, key: str, *, required: bool = False) -> tuple[dict[str, Json], ...]:
        """A list of objects; absent is empty (an error when ``required``)."""
        value = self.values.get(key)
        if value is None:
            if required:
                raise self.error(key, "is missing")
            return ()
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of objects, got {_kind(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{index}]", f"must be an object, got {_kind(item)}")
        return tuple(value)

    def mapping(self, key: str) -> dict[str, Json] | None:
        """An object, or None when absent."""
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, f"must be an object, got {_kind(value)}")
        return value

    def error(self, key: str, problem: str) -> TerminalError:
        """The failure of field ``key``: ``<TASK> task input '<key>' <problem>``."""
        return TerminalError(f"{self.task} task input '{key}' {problem}")


def _kind(value: Json) -> str:
    return "null" if value is None else type(value).__name__
