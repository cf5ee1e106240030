"""Local partitioning agrees with Kafka's Java client and with librdkafka."""

from __future__ import annotations

import confluent_kafka
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.log.partitioning import murmur2, partition_for

# Java's Utils.murmur2(bytes): Kafka's UtilsTest.testMurmur2, then librdkafka's rdmurmur2.c unit
# test (its unsigned results shown as signed ints), then Akka's Murmur2Spec, all checked against
# the Kafka implementation.
KAFKA_VECTORS = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}
LIBRDKAFKA_VECTORS = {
    "kafka": -798503068,  # 0xd067cf64
    "giberish123456789": -1890243828,  # 0x8f552b0c
    "1234": -1614185708,  # 0x9fc97b14
    "234": -406844982,  # 0xe7c009ca
    "34": -2026295078,  # 0x873930da
    "4": 1514888353,  # 0x5a4b5ca1
    "PreAmbleWillBeRemoved,ThePrePartThatIs": 2017611548,  # 0x78424f1c
    "reAmbleWillBeRemoved,ThePrePartThatIs": 1247982455,  # 0x4a62b377
    "eAmbleWillBeRemoved,ThePrePartThatIs": -521871202,  # 0xe0e4e09e
    "AmbleWillBeRemoved,ThePrePartThatIs": 1656271935,  # 0x62b8b43f
    "": 275646681,  # 0x106e08d9
}
AKKA_VECTORS = {"1": -1993445489, "12": 126087238, "123": -267702483, "12345": -1188365604}


@pytest.mark.parametrize(
    ("key", "expected"),
    [*KAFKA_VECTORS.items(), *LIBRDKAFKA_VECTORS.items(), *AKKA_VECTORS.items()],
)
def test_murmur2_matches_published_vectors(key: str, expected: int) -> None:
    """murmur2 returns the value Java's Utils.murmur2 returns for the same bytes."""
    assert murmur2(key.encode()) == expected


def test_murmur2_is_a_signed_32_bit_int() -> None:
    """murmur2 stays within Java's int range for every tail length."""
    for length in range(12):
        value = murmur2(b"\xff" * length)
        assert -(2**31) <= value < 2**31


def test_partition_for_masks_the_sign_bit() -> None:
    """A negative hash maps to a partition the way Kafka's toPositive does."""
    assert murmur2(b"21") < 0
    assert partition_for("21", 6) == (-973932308 & 0x7FFFFFFF) % 6


@given(key=st.text(max_size=64), partitions=st.integers(min_value=1, max_value=1000))
def test_partition_for_agrees_with_librdkafka(key: str, partitions: int) -> None:
    """partition_for equals librdkafka's own Java-compatible murmur2 partition."""
    assert partition_for(key, partitions) == confluent_kafka.murmur2(key.encode(), partitions)


def test_partition_for_rejects_zero_partitions() -> None:
    """A topic has at least one partition."""
    with pytest.raises(ValueError, match="at least 1"):
        partition_for("w", 0)
