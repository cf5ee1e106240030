"""Topic names: one prefix, legal characters only."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.cimpl import NewTopic
from structlog.testing import capture_logs

from orchestrator.config import Settings
from orchestrator.errors import TopicNameError
from orchestrator.log.topics import Topics, ensure_topics, validate_task_type


def test_topics_share_the_prefix() -> None:
    """Every topic name starts with the prefix; dead letters use a dash."""
    topics = Topics("p.")
    assert topics.requests == "p.requests"
    assert topics.results == "p.results"
    assert topics.events == "p.events"
    assert topics.definitions == "p.definitions"
    assert topics.dead_letters == "p.dead-letters"
    assert topics.tasks("http_call") == "p.tasks.http_call"
    assert topics.co_partitioned == ("p.requests", "p.results", "p.events")


def test_default_prefix_is_orch() -> None:
    """Without a prefix the topics live under ``orch.``."""
    assert Topics().events == "orch.events"
    assert Topics.from_settings(Settings(topic_prefix="x-")).events == "x-events"


@pytest.mark.parametrize("task_type", ["", "has space", "slash/type", "ümlaut", "a:b"])
def test_illegal_task_types_are_refused(task_type: str) -> None:
    """A task type that cannot be part of a topic name raises TopicNameError."""
    with pytest.raises(TopicNameError):
        validate_task_type(task_type)
    with pytest.raises(TopicNameError):
        Topics().tasks(task_type)


def test_overlong_task_topic_is_refused() -> None:
    """Kafka's 249-character limit applies to the whole topic name."""
    with pytest.raises(TopicNameError, match="249"):
        Topics().tasks("t" * 240)


def test_illegal_prefix_is_refused() -> None:
    """The prefix obeys the same character rules."""
    with pytest.raises(TopicNameError, match="prefix"):
        Topics("bad prefix.")


class FakeAdmin:
    """An admin client that refuses topic configs, as some brokers do."""

    def __init__(self) -> None:
        self.partitions: dict[str, int] = {}
        self.created: list[tuple[str, dict[str, str]]] = []

    def create_topics(self, specs: list[NewTopic], **_: object) -> dict[str, Future[None]]:
        futures: dict[str, Future[None]] = {}
        for spec in specs:
            future: Future[None] = Future()
            if spec.config:
                future.set_exception(KafkaException(KafkaError(KafkaError.INVALID_CONFIG)))
            else:
                self.created.append((spec.topic, dict(spec.config or {})))
                self.partitions[spec.topic] = spec.num_partitions
                future.set_result(None)
            futures[spec.topic] = future
        return futures

    def list_topics(self, **_: object) -> SimpleNamespace:
        topics = {
            name: SimpleNamespace(partitions=dict.fromkeys(range(count)), error=None)
            for name, count in self.partitions.items()
        }
        return SimpleNamespace(topics=topics)


def test_rejected_topic_configs_fall_back_to_plain_topics() -> None:
    """A broker that refuses cleanup.policy still gets a definitions topic, and a warning."""
    admin = FakeAdmin()
    settings = Settings(bootstrap="fake:1", topic_prefix="f.", partitions=3)
    with capture_logs() as logs:
        topics = ensure_topics(admin, settings)  # type: ignore[arg-type]
    assert admin.partitions[topics.definitions] == 1
    assert admin.partitions[topics.events] == 3
    assert [entry["event"] for entry in logs] == ["topic configs rejected; creating without them"]
    assert logs[0]["topics"] == ["f.definitions"]
