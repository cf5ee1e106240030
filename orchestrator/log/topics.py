"""Topic names and their creation.

``requests``, ``results`` and ``events`` share one partition count, so workflow W lives on the same
partition p of all three and one processor instance owns p across them; :func:`ensure_topics`
refuses a layout that breaks this. ``definitions`` is a compacted single-partition table.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it without __all__

from orchestrator.config import Settings
from orchestrator.errors import BrokerError, TopicLayoutError, TopicNameError
from orchestrator.telemetry import get_logger

__all__ = [
    "MAX_TOPIC_NAME_LENGTH",
    "TASKDEF_KEY_PREFIX",
    "Topics",
    "creation_error",
    "ensure_task_topic",
    "ensure_topics",
    "partition_counts",
    "validate_task_type",
]

MAX_TOPIC_NAME_LENGTH = 249
#: Key prefix of task definitions on the definitions topic (workflows use ``name:version``).
TASKDEF_KEY_PREFIX = "taskdef:"
_LEGAL = re.compile(r"[A-Za-z0-9._-]*")
_COMPACTED = {"cleanup.policy": "compact"}
# Refusals that a topic without configs may get past.
_CONFIG_ERRORS = frozenset(
    {KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION, KafkaError.UNSUPPORTED_VERSION}
)

_log = get_logger("orchestrator.topics")


def _check_name_part(part: str, what: str) -> None:
    if not _LEGAL.fullmatch(part):
        raise TopicNameError(
            f"{what} {part!r} cannot be part of a Kafka topic name: "
            "use only letters, digits, '.', '_' and '-'"
        )


def validate_task_type(task_type: str) -> str:
    """Return ``task_type`` if it can name a topic; raise :class:`TopicNameError` otherwise."""
    if not task_type:
        raise TopicNameError("a task type cannot be empty")
    _check_name_part(task_type, "task type")
    return task_type


@dataclass(frozen=True, slots=True)
class Topics:
    """The names of every topic, all starting with ``prefix``."""

    prefix: str = "orch."

    def __post_init__(self) -> None:
        _check_name_part(self.prefix, "topic prefix")

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        """The topics named by ``settings.topic_prefix``."""
        return cls(settings.topic_prefix)

    @property
    def requests(self) -> str:
        """Start, signal, terminate and other commands for workflows, keyed by workflow id."""
        return f"{self.prefix}requests"

    @property
    def results(self) -> str:
        """Task results and heartbeats from workers, keyed by workflow id."""
        return f"{self.prefix}results"

    @property
    def events(self) -> str:
        """The log: every fact about every workflow, keyed by workflow id."""
        return f"{self.prefix}events"

    @property
    def definitions(self) -> str:
        """Workflow and task definitions, keyed by ``name:version``; compacted."""
        return f"{self.prefix}definitions"

    @property
    def dead_letters(self) -> str:
        """Records nobody could process, with the reason."""
        return f"{self.prefix}dead-letters"

    @property
    def co_partitioned(self) -> tuple[str, str, str]:
        """The topics that must share one partition count: requests, results and events."""
        return (self.requests, self.results, self.events)

    def tasks(self, task_type: str) -> str:
        """The command topic that workers of ``task_type`` consume."""
        name = f"{self.prefix}tasks.{validate_task_type(task_type)}"
        if len(name) > MAX_TOPIC_NAME_LENGTH:
            raise TopicNameError(
                f"topic {name[:40]}... is {len(name)} characters; Kafka allows "
                f"{MAX_TOPIC_NAME_LENGTH}: shorten the task type or the prefix"
            )
        return name


# Creation --------------------------------------------------------------------------------------


def ensure_topics(
    admin: AdminClient, settings: Settings, extra_task_types: Iterable[str] = ()
) -> Topics:
    """Create every topic that does not exist yet, then check co-partitioning.

    Existing topics are left alone. Raises :class:`TopicLayoutError` when requests, results and
    events exist with different partition counts.
    """
    topics = Topics.from_settings(settings)
    specs = [
        *(_spec(name, settings.partitions, settings) for name in topics.co_partitioned),
        _spec(topics.definitions, 1, settings, config=_COMPACTED),
        _spec(topics.dead_letters, settings.partitions, settings),
        *(_spec(topics.tasks(t), settings.partitions, settings) for t in extra_task_types),
    ]
    _create(admin, specs, settings.connect_timeout_s)
    _check_co_partitioned(admin, topics, settings)
    _remember(settings, [spec.topic for spec in specs])
    return topics


def ensure_task_topic(admin: AdminClient, settings: Settings, task_type: str) -> str:
    """Create the command topic of ``task_type`` unless this process already did; return its name.

    Cheap to call on every use: after the first call per broker and topic it does no I/O.
    """
    name = Topics.from_settings(settings).tasks(task_type)
    if (settings.bootstrap, name) not in _known:
        _create(admin, [_spec(name, settings.partitions, settings)], settings.connect_timeout_s)
        _remember(settings, [name])
    return name


def partition_counts(admin: AdminClient, names: Iterable[str], timeout: float) -> dict[str, int]:
    """The partition count of each named topic that exists."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot read topic metadata: {exc}") from exc
    found = metadata.topics
    return {
        name: len(found[name].partitions)
        for name in names
        if name in found and found[name].error is None
    }


def _spec(
    name: str, partitions: int, settings: Settings, config: dict[str, str] | None = None
) -> NewTopic:
    return NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=settings.replication_factor,
        config=dict(config or {}),
    )


def _create(admin: AdminClient, specs: list[NewTopic], timeout: float) -> None:
    rejected = _create_once(admin, specs, timeout)
    if rejected:
        # Brokers that refuse topic configs still get the topic; compaction is an optimisation.
        names = sorted(spec.topic for spec in rejected)
        _log.warning("topic configs rejected; creating without them", topics=names)
        retry = [NewTopic(s.topic, s.num_partitions, s.replication_factor) for s in rejected]
        _raise_on_rejected(_create_once(admin, retry, timeout))


def _create_once(admin: AdminClient, specs: list[NewTopic], timeout: float) -> list[NewTopic]:
    """Create ``specs``; return the ones refused only because of their configs."""
    if not specs:
        return []
    by_name = {spec.topic: spec for spec in specs}
    try:
        futures = admin.create_topics(specs, operation_timeout=timeout, request_timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot create topics {sorted(by_name)}: {exc}") from exc
    rejected: list[NewTopic] = []
    for name, future in futures.items():
        error = creation_error(future, timeout)
        if error is None or error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            continue
        if error.code() in _CONFIG_ERRORS and by_name[name].config:
            rejected.append(by_name[name])
            continue
        raise BrokerError(f"cannot create topic {name}: {error.name()}: {error.str()}")
    return rejected


def _raise_on_rejected(rejected: list[NewTopic]) -> None:
    if rejected:
        names = sorted(spec.topic for spec in rejected)
        raise BrokerError(f"cannot create topics {names}: the broker rejected them")


def creation_error(future: Future[None], timeout: float) -> KafkaError | None:
    """The error a topic creation ended with (None on success); raises if unconfirmed."""
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        return error
    except TimeoutError as exc:
        raise BrokerError(f"topic creation not confirmed within {timeout:g} s") from exc
    return None


def _check_co_partitioned(admin: AdminClient, topics: Topics, settings: Settings) -> None:
    counts = _wait_for_counts(admin, topics.co_partitioned, settings.connect_timeout_s)
    if len(set(counts.values())) > 1:
        layout = ", ".join(f"{name}={count}" for name, count in counts.items())
        raise TopicLayoutError(
            f"requests, results and events must have the same partition count, found {layout}; "
            "delete and recreate the odd one (adding partitions would move workflows)"
        )
    count = next(iter(counts.values()))
    if count != settings.partitions:
        _log.warning(
            "existing topics keep their partition count",
            found=count,
            configured=settings.partitions,
        )


def _wait_for_counts(admin: AdminClient, names: tuple[str, ...], timeout: float) -> dict[str, int]:
    """Partition counts of ``names``, polling while freshly created topics reach the metadata."""
    deadline = time.monotonic() + timeout
    while True:
        counts = partition_counts(admin, names, timeout)
        if len(counts) == len(names):
            return counts
        if time.monotonic() >= deadline:
            missing = sorted(set(names) - set(counts))
            raise BrokerError(f"topics {missing} do not appear in the metadata after creation")
        time.sleep(0.05)


# Process-wide memory of topics known to exist, so ensure_task_topic costs nothing after the first
# call. Keyed by bootstrap address: tests run several brokers in one process.
_known: set[tuple[str, str]] = set()
_known_lock = threading.Lock()


def _remember(settings: Settings, names: Iterable[str]) -> None:
    with _known_lock:
        _known.update((settings.bootstrap, name) for name in names)
