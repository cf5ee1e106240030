"""The broker, topics and clients against a live broker (embedded tansu, or ORCH_BOOTSTRAP)."""

from __future__ import annotations

import os
import socket
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from confluent_kafka.cimpl import NewTopic

from orchestrator.config import Settings
from orchestrator.errors import BrokerUnreachableError, EmbeddedBrokerError, TopicLayoutError
from orchestrator.log.broker import LOOPBACK, EmbeddedBroker, free_port
from orchestrator.log.kafka import (
    admin_client,
    check_reachable,
    make_consumer,
    make_producer,
    produce_and_wait,
    raise_for_message,
)
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics, ensure_task_topic, ensure_topics, partition_counts
from tests.helpers import assert_eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def admin(settings: Settings) -> AdminClient:
    """An admin client for the test broker."""
    return admin_client(settings)


def read_all(
    consumer: Consumer, topic: str, partitions: int, expected: int, settle_s: float = 0.0
) -> list[Message]:
    """Every record of ``topic`` from the beginning, once ``expected`` of them arrived.

    ``settle_s`` keeps reading that long afterwards, to catch records that should not be there.
    """
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records: list[Message] = []

    def enough() -> bool:
        records.extend(m for m in consumer.consume(100, timeout=0.2) if raise_for_message(m))
        return len(records) >= expected

    assert_eventually(enough, timeout=15, message=f"{expected} records on {topic}")
    settle_until = time.monotonic() + settle_s
    while time.monotonic() < settle_until:
        records.extend(m for m in consumer.consume(100, timeout=0.1) if raise_for_message(m))
    return records


def read_all_once(
    settings: Settings, topic: str, expected: int, settle_s: float = 0.0
) -> list[Message]:
    """:func:`read_all` with a fresh group-less consumer that is closed afterwards."""
    consumer = make_consumer(settings)
    try:
        return read_all(consumer, topic, settings.partitions, expected, settle_s)
    finally:
        consumer.close()


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# The embedded broker ---------------------------------------------------------------------------


def test_embedded_broker_starts_and_stops_without_orphans() -> None:
    """The broker answers metadata once started; after stop its process is gone and reaped."""
    broker = EmbeddedBroker()
    with broker:
        pid = broker.pid
        assert pid is not None
        assert broker.bootstrap == f"{LOOPBACK}:{broker.port}"
        check_reachable(Settings(bootstrap=broker.bootstrap), timeout=5)
    assert broker.pid is None
    assert not pid_exists(pid)


def test_embedded_broker_reports_a_taken_port() -> None:
    """A broker that cannot listen fails start() quickly, quoting its own output."""
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(EmbeddedBrokerError, match=f"exited .* on {LOOPBACK}:{port}") as info:
            EmbeddedBroker(port, start_timeout_s=10).start()
    assert time.monotonic() - started < 5
    assert "in use" in str(info.value)


def test_embedded_broker_moves_on_from_a_port_taken_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a port of its own choosing, a lost race for the port costs a retry, not a failure."""
    from orchestrator.log import broker as broker_module

    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(broker_module, "free_port", lambda: next(ports))
        with EmbeddedBroker() as broker:
            assert broker.port != taken
            check_reachable(Settings(bootstrap=broker.bootstrap), timeout=5)


# Reachability ----------------------------------------------------------------------------------


def test_check_reachable_passes_against_the_broker(settings: Settings) -> None:
    """A running broker passes the reachability check."""
    check_reachable(settings)


def test_check_reachable_fails_fast_on_a_closed_port() -> None:
    """Nobody listening: BrokerUnreachableError naming the address, within about the timeout."""
    address = f"{LOOPBACK}:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerUnreachableError, match=f"cannot reach Kafka at {address} within 1 s"):
        check_reachable(Settings(bootstrap=address, connect_timeout_s=1.0))
    assert time.monotonic() - started < 2.5


# Topics ----------------------------------------------------------------------------------------


def test_ensure_topics_is_idempotent_with_the_right_partitions(
    settings: Settings, admin: AdminClient
) -> None:
    """Creating twice is fine; requests/results/events/dead-letters get 6, definitions 1."""
    topics = ensure_topics(admin, settings, extra_task_types=["http"])
    assert ensure_topics(admin, settings, extra_task_types=["http"]) == topics
    names = [*topics.co_partitioned, topics.dead_letters, topics.definitions, topics.tasks("http")]
    counts = partition_counts(admin, names, timeout=5)
    assert counts == {name: (1 if name == topics.definitions else 6) for name in names}


def test_definitions_topic_is_compacted(settings: Settings, admin: AdminClient) -> None:
    """The definitions topic carries cleanup.policy=compact."""
    topics = ensure_topics(admin, settings)
    resource = ConfigResource("topic", topics.definitions)
    configs = admin.describe_configs([resource])[resource].result(timeout=5)
    assert configs["cleanup.policy"].value == "compact"


def test_ensure_topics_refuses_mismatched_partitions(
    settings: Settings, admin: AdminClient
) -> None:
    """An existing events topic with another partition count breaks co-partitioning."""
    events = Topics.from_settings(settings).events
    admin.create_topics([NewTopic(events, 3, 1)])[events].result(timeout=10)
    with pytest.raises(TopicLayoutError, match=f"{events}=3"):
        ensure_topics(admin, settings)


def test_ensure_task_topic_creates_once_per_process(settings: Settings, admin: AdminClient) -> None:
    """The first call creates tasks.<type>; later calls do no broker I/O at all."""
    name = ensure_task_topic(admin, settings, "llm")
    assert name == f"{settings.topic_prefix}tasks.llm"
    assert partition_counts(admin, [name], timeout=5) == {name: 6}

    class NoAdmin:
        def __getattr__(self, attribute: str) -> None:
            raise AssertionError(f"unexpected admin call {attribute}")

    assert ensure_task_topic(NoAdmin(), settings, "llm") == name  # type: ignore[arg-type]


# Producing and consuming -----------------------------------------------------------------------


def test_transactional_produce_and_read_committed_roundtrip(
    settings: Settings, admin: AdminClient
) -> None:
    """Records of a committed transaction reach a read_committed consumer."""
    events = ensure_topics(admin, settings).events
    producer = make_producer(settings, transactional_id=f"{settings.topic_prefix}tx")
    producer.init_transactions(10)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(events, key=f"w{i}", value=f"v{i}".encode())
    producer.commit_transaction(10)

    records = read_all_once(settings, events, expected=10)
    assert sorted(m.value() or b"" for m in records) == sorted(f"v{i}".encode() for i in range(10))
    assert all(m.partition() == partition_for((m.key() or b"").decode(), 6) for m in records)


def test_read_committed_hides_aborted_transactions(
    settings: Settings, admin: AdminClient, broker_is_tansu: bool, request: pytest.FixtureRequest
) -> None:
    """A read_committed consumer never sees the records of an aborted transaction."""
    if broker_is_tansu:
        request.applymarker(
            pytest.mark.xfail(
                reason="tansu 0.6.0 delivers aborted records to read_committed", strict=True
            )
        )
    events = ensure_topics(admin, settings).events
    producer = make_producer(settings, transactional_id=f"{settings.topic_prefix}tx")
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(events, key="w", value=b"aborted")
    producer.flush(10)
    producer.abort_transaction(10)
    producer.begin_transaction()
    producer.produce(events, key="w", value=b"committed")
    producer.commit_transaction(10)

    records = read_all_once(settings, events, expected=1, settle_s=1.0)
    assert [m.value() for m in records] == [b"committed"]


def test_librdkafka_partitions_keys_like_partition_for(settings: Settings) -> None:
    """The murmur2_random partitioner puts each key where partition_for says."""
    topic = ensure_task_topic(admin_client(settings), settings, "partitioning")
    producer = make_producer(settings)
    keys = [f"workflow-{i}" for i in range(60)]
    chosen = {key: produce_and_wait(producer, topic, key, b"x").partition() for key in keys}
    assert chosen == {key: partition_for(key, settings.partitions) for key in keys}
    assert len(set(chosen.values())) == settings.partitions


def test_produce_and_wait_honours_an_explicit_partition(settings: Settings) -> None:
    """An explicit partition overrides the key's hash and the headers travel with the record."""
    topic = ensure_task_topic(admin_client(settings), settings, "explicit")
    producer = make_producer(settings)
    delivered = produce_and_wait(
        producer, topic, "k", b"v", {"type": b"Probe"}, partition=5, timeout=10
    )
    assert (delivered.partition(), delivered.offset()) == (5, 0)
    (record,) = read_all_once(settings, topic, expected=1)
    assert record.headers() == [("type", b"Probe")]
