"""Committing a consumer's offsets by hand, as the workers and the API's polling bridge do.

Both commit only what their :class:`~orchestrator.worker_offsets.OffsetTracker` says is done,
and both must offer a position again when its commit failed, whether the whole commit failed
or only some of its partitions did (librdkafka reports the latter per partition).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

__all__ = ["commit_offsets", "failed_commits"]


def commit_offsets(
    consumer: Consumer, topic: str, offsets: dict[int, int], *, asynchronous: bool, log: Any
) -> None:
    """Commit ``offsets`` (partition -> next offset) of ``topic``; a failure is logged."""
    if not offsets:
        return
    positions = [TopicPartition(topic, p, o) for p, o in offsets.items()]
    try:
        if asynchronous:
            consumer.commit(offsets=positions, asynchronous=True)
        else:
            consumer.commit(offsets=positions, asynchronous=False)
    except KafkaException as exc:
        log.warning("offset commit failed", error=str(exc))


def failed_commits(
    error: KafkaError | None, partitions: list[TopicPartition], log: Any
) -> list[int]:
    """The partitions a commit report says failed (logged); none when there was nothing to do."""
    if error is not None and error.code() == KafkaError._NO_OFFSET:
        return []
    failed = [tp for tp in partitions if error is not None or tp.error is not None]
    if failed:
        reason = error if error is not None else failed[0].error
        log.warning(
            "offset commit failed; retrying",
            error=reason.str() if reason is not None else None,
            partitions=sorted(tp.partition for tp in failed),
        )
    return [tp.partition for tp in failed]
