"""Which offsets a worker may commit when its records finish out of order.

A worker runs many records of one partition at once and they finish in any order. Kafka keeps
one committed offset per partition, meaning "everything below this is done", so the worker may
commit only the end of the contiguous prefix of finished records: committing past a record that
is still running would lose it if the worker died. :class:`OffsetTracker` keeps that prefix.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

__all__ = ["OffsetTracker"]


class _PartitionOffsets:
    """The open (started, not done) offsets of one partition and the next offset to fetch."""

    __slots__ = ("committed", "heap", "next", "open")

    def __init__(self) -> None:
        self.open: set[int] = set()
        self.heap: list[int] = []  # open offsets, plus done ones not yet popped (lazy deletion)
        self.next: int | None = None
        self.committed: int | None = None

    def started(self, offset: int) -> None:
        if offset not in self.open:
            self.open.add(offset)
            heapq.heappush(self.heap, offset)
        if self.next is None or offset >= self.next:
            self.next = offset + 1

    def position(self) -> int | None:
        """The lowest open offset, or the next one to fetch when nothing is open."""
        heap = self.heap
        while heap and heap[0] not in self.open:
            heapq.heappop(heap)
        return heap[0] if heap else self.next


class OffsetTracker:
    """Per partition, the offset below which every started record is done.

    Call :meth:`started` for each record in the order the consumer hands them out and
    :meth:`done` once its outcome is durable (the result acknowledged by the broker).
    :meth:`committable` then gives the offsets to commit. Not thread-safe: one consumer thread
    owns a tracker.
    """

    def __init__(self) -> None:
        self._partitions: dict[int, _PartitionOffsets] = {}

    def assign(self, partitions: Iterable[int]) -> None:
        """Start tracking ``partitions`` afresh (a new assignment resumes from the commit)."""
        for partition in partitions:
            self._partitions[partition] = _PartitionOffsets()

    def revoke(self, partitions: Iterable[int]) -> None:
        """Stop tracking ``partitions``; later reports about them are ignored."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def started(self, partition: int, offset: int) -> None:
        """Record that the record at ``offset`` was handed out and is not done yet."""
        self._partitions.setdefault(partition, _PartitionOffsets()).started(offset)

    def done(self, partition: int, offset: int) -> None:
        """Record that the record at ``offset`` is done (its outcome is durable).

        An offset that is not open is ignored. A late report from before a rebalance may close
        an offset that was handed out again: its result is delivered either way, and the new
        run only repeats it.
        """
        offsets = self._partitions.get(partition)
        if offsets is not None:
            offsets.open.discard(offset)

    def pending(self, partition: int) -> int:
        """How many records of ``partition`` are started and not done."""
        offsets = self._partitions.get(partition)
        return len(offsets.open) if offsets is not None else 0

    def position(self, partition: int) -> int | None:
        """The offset to commit for ``partition`` now, or None if nothing was started."""
        offsets = self._partitions.get(partition)
        return offsets.position() if offsets is not None else None

    def positions(self, partitions: Iterable[int] | None = None) -> dict[int, int]:
        """The offset to commit now for each tracked partition (of ``partitions``) with records."""
        wanted = self._partitions.keys() if partitions is None else partitions
        found = {number: self.position(number) for number in wanted}
        return {number: position for number, position in found.items() if position is not None}

    def commit_failed(self, partitions: Iterable[int]) -> None:
        """A commit of these partitions failed: offer their positions again next time."""
        for partition in partitions:
            offsets = self._partitions.get(partition)
            if offsets is not None:
                offsets.committed = None

    def committable(self) -> dict[int, int]:
        """Offsets that moved since the last call, by partition; they count as committed now."""
        moved: dict[int, int] = {}
        for partition, offsets in self._partitions.items():
            position = offsets.position()
            if position is not None and position != offsets.committed:
                offsets.committed = position
                moved[partition] = position
        return moved
