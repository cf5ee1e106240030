"""Kafka's key partitioning, computed locally.

Producers use librdkafka's ``murmur2_random`` partitioner, which is the Java client's default for
keyed records: ``(murmur2(key) & 0x7fffffff) % partitions``. :func:`partition_for` gives the same
answer without a broker, so a process knows which partition (and so which processor instance) owns
a workflow id, and a worker in Java or Go lands its records on the same partition.
"""

from __future__ import annotations

import struct

__all__ = ["murmur2", "partition_for"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` as a signed 32-bit int, as Java's ``Utils.murmur2``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    body = length - length % 4
    for (word,) in struct.iter_unpack("<I", data[:body]):
        k = (word * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    h = _mix_tail(h, data[body:])
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def _mix_tail(h: int, tail: bytes) -> int:
    """Fold the last 0-3 bytes into ``h`` (the fall-through ``switch`` of the reference code)."""
    if not tail:
        return h
    for index in range(len(tail) - 1, -1, -1):
        h ^= tail[index] << (8 * index)
    return (h * _M) & _MASK32


def partition_for(key: str, partitions: int) -> int:
    """The partition a record keyed ``key`` goes to among ``partitions`` partitions."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
