"""The global table of workflow definitions, read from the compacted ``definitions`` topic.

Every processor holds all definitions. A start request naming a definition the table has not
seen makes the processor read the topic to its end before it rejects the request, so a
definition registered just before a start is never missed.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from pydantic import ValidationError

from orchestrator.config import Settings
from orchestrator.dsl.model import TaskDef, WorkflowDef
from orchestrator.engine.records import TaskDefinition, WorkflowDefinition
from orchestrator.errors import OrchestratorError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_consumer
from orchestrator.log.topics import TASKDEF_KEY_PREFIX, Topics
from orchestrator.telemetry import get_logger

log = get_logger(__name__)


class DefinitionTable:
    """All versions of all workflow definitions, kept up to date from the log."""

    def __init__(self, settings: Settings) -> None:
        self._topic = Topics(settings.topic_prefix).definitions
        self._consumer: Any = make_consumer(
            settings,
            group_id=None,
            **{"enable.partition.eof": True, "isolation.level": "read_committed"},
        )
        self._consumer.assign([TopicPartition(self._topic, 0, 0)])
        self._by_name: dict[str, dict[int, WorkflowDef]] = {}
        self._task_defs: dict[str, TaskDef] = {}

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The definition ``name`` at ``version``, or its latest version when None."""
        versions = self._by_name.get(name)
        if not versions:
            return None
        if version is None:
            return versions[max(versions)]
        return versions.get(version)

    def workflows(self) -> list[WorkflowDef]:
        """Every version of every workflow definition, by name then version."""
        return [
            versions[number]
            for _, versions in sorted(self._by_name.items())
            for number in sorted(versions)
        ]

    def task_definitions(self) -> list[TaskDef]:
        """Every registered task definition, by name."""
        return [self._task_defs[name] for name in sorted(self._task_defs)]

    def poll(self, timeout: float = 0.0) -> None:
        """Apply whatever new definitions have arrived, without waiting for more."""
        for message in self._consumer.consume(1000, timeout):
            self._apply(message)

    def refresh(self, timeout: float = 5.0) -> None:
        """Read the topic up to its current end, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        partition = TopicPartition(self._topic, 0)
        _, end = self._consumer.get_watermark_offsets(partition, timeout=timeout)
        while self._position(partition) < end and time.monotonic() < deadline:
            for message in self._consumer.consume(1000, 0.1):
                self._apply(message)

    def _position(self, partition: TopicPartition) -> int:
        offset: int = self._consumer.position([partition])[0].offset
        return max(offset, 0)

    def task_def(self, name: str) -> TaskDef | None:
        """The registered TaskDef of a task type, or None."""
        return self._task_defs.get(name)

    def _apply(self, message: Any) -> bool:
        """Apply one message; True when it marks the end of the topic."""
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return True
            log.warning("definitions topic error", error=str(error))
            return False
        key = (message.key() or b"").decode()
        if message.value() is None:
            self._forget(key)
            return False
        try:
            self._remember(CODEC.decode(message.value()))
        except (OrchestratorError, ValidationError) as exc:
            log.error("skipping unreadable definition", offset=message.offset(), error=str(exc))
        return False

    def _remember(self, record: Any) -> None:
        # Checked in full at registration; read back by schema only, so a rule added later
        # never hides a definition that running workflows may still start.
        if isinstance(record, WorkflowDefinition):
            definition = WorkflowDef.model_validate(record.definition)
            self._by_name.setdefault(definition.name, {})[definition.version] = definition
        elif isinstance(record, TaskDefinition):
            task_def = TaskDef.model_validate(record.definition)
            self._task_defs[task_def.name] = task_def
        else:
            raise OrchestratorError(f"unexpected {type(record).__name__} record")

    def _forget(self, key: str) -> None:
        """A tombstone: ``taskdef:<name>`` or ``<name>:<version>`` is deleted."""
        if key.startswith(TASKDEF_KEY_PREFIX):
            self._task_defs.pop(key[len(TASKDEF_KEY_PREFIX) :], None)
            return
        name, _, version = key.rpartition(":")
        if version.isdigit():
            self._by_name.get(name, {}).pop(int(version), None)

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()
