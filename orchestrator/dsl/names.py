"""Rules for names that become part of Kafka topic names."""

from __future__ import annotations

import re

_TASK_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


def check_task_type(name: str) -> str:
    """Return ``name`` if it can be a task type (and so a topic suffix), else raise ValueError."""
    if not _TASK_TYPE.match(name):
        raise ValueError(
            f"task name {name!r} may only contain letters, digits, '.', '_' and '-' "
            "(it becomes the Kafka topic tasks.<name>)"
        )
    return name
