"""A member of a task type's consumer group, as the workers and the API's polling bridge are.

Both commit only what their :class:`~orchestrator.worker_offsets.OffsetTracker` says is done,
and both must offer a position again when its commit failed, whether the whole commit failed
or only some of its partitions did (librdkafka reports the latter per partition). Both pause
fetching while full, and on a rebalance both forget what they hold of the partitions taken
away and commit what is done there first. :class:`GroupMember` is that shared part.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from orchestrator.errors import BrokerError
from orchestrator.worker_offsets import OffsetTracker

__all__ = ["GroupMember", "commit_offsets", "failed_commits", "position"]

LEAVE_TIMEOUT_S = 5.0


def position(message: Message) -> tuple[int, int]:
    """Partition and offset of a consumed record (never None for a record)."""
    partition, offset = message.partition(), message.offset()
    if partition is None or offset is None:
        raise BrokerError("the consumer returned a record without partition or offset")
    return partition, offset


def commit_offsets(
    consumer: Consumer, topic: str, offsets: dict[int, int], *, asynchronous: bool, log: Any
) -> None:
    """Commit ``offsets`` (partition -> next offset) of ``topic``; a failure is logged."""
    if not offsets:
        return
    positions = [TopicPartition(topic, p, o) for p, o in offsets.items()]
    try:
        if asynchronous:  # two calls: the stubs type each mode by a Literal
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


class GroupMember:
    """Pausing, committing and rebalancing for a consumer whose offsets an OffsetTracker keeps.

    A subclass sets ``topic``, ``_consumer`` (created with ``on_commit=self._on_commit``),
    ``_tracker``, ``_paused`` and ``_log``, subscribes with these rebalance callbacks, and may
    override :meth:`_forget` (drop what it holds of partitions taken away) and
    :meth:`_settle_done` (take in finished work before a revoke commits it).
    """

    topic: str
    _consumer: Consumer
    _tracker: OffsetTracker
    _paused: bool
    _log: Any

    def _subscribe(self) -> None:
        """Join the group for ``topic`` with this member's rebalance callbacks."""
        self._consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _consumer_error(self, error: KafkaError) -> None:
        """Raise on a fatal consumer error; log any other but the end of a partition."""
        if error.fatal():
            raise BrokerError(f"fatal consumer error on {self.topic}: {error.str()}")
        if error.code() != KafkaError._PARTITION_EOF:
            self._log.warning("consumer error", code=error.name(), reason=error.str())

    def _leave(self, timeout_s: float = LEAVE_TIMEOUT_S) -> None:
        """Hand the partitions back in an ordinary poll, then close the consumer.

        Closing a consumer that still holds partitions runs the revoke inside
        ``Consumer.close``, where confluent-kafka asks librdkafka for the rebalance protocol
        while holding the GIL; seen once here, that request was never answered and the whole
        process hung. Unsubscribing first revokes during ``consume``, and close has nothing
        left to revoke.
        """
        try:
            self._consumer.unsubscribe()
            deadline = time.monotonic() + timeout_s
            while self._consumer.assignment() and time.monotonic() < deadline:
                self._consumer.consume(1, 0.05)
        except KafkaException as exc:
            self._log.warning("leaving the group failed; closing anyway", error=str(exc))
        self._consumer.close()

    def _forget(self, numbers: list[int]) -> None:
        """Drop what is held of partitions ``numbers``: their next owner gets it, uncommitted."""

    def _settle_done(self) -> None:
        """Mark in the tracker what finished, so a revoke commits it."""

    def _pause(self, paused: bool) -> None:
        if paused == self._paused:
            return
        assignment = self._consumer.assignment()
        if paused:
            self._consumer.pause(assignment)
        else:
            self._consumer.resume(assignment)
        self._paused = paused

    def _commit(self, offsets: dict[int, int], *, asynchronous: bool) -> None:
        commit_offsets(
            self._consumer, self.topic, offsets, asynchronous=asynchronous, log=self._log
        )

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Offer the positions of a failed commit again, whether all or some partitions failed."""
        self._tracker.commit_failed(failed_commits(error, partitions, self._log))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._tracker.assign(tp.partition for tp in partitions)
        if self._paused:
            consumer.assign(partitions)
            consumer.pause(partitions)
        self._log.info("partitions assigned", partitions=sorted(tp.partition for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        self._forget(numbers)
        self._settle_done()
        self._commit(self._tracker.positions(numbers), asynchronous=False)
        self._tracker.revoke(numbers)
        self._log.info("partitions revoked", partitions=sorted(numbers))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        self._forget(numbers)
        self._tracker.revoke(numbers)
        self._log.warning("partitions lost", partitions=sorted(numbers))
