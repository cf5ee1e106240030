"""The RocksDB state of one partition: workflow rows and the checkpoint, written atomically.

Keys: ``workflow/<id>`` (the state as JSON, without its tasks), ``task/<id>\0<task id>`` (one
row per task, so a batch rewrites only the tasks it changed), ``timer/<due>/...`` (the timers
the states ask for), ``trace/<id>`` (the trace context of the workflow's current run, kept
outside the engine's state; see :mod:`orchestrator.observability.runs`) and
``meta/checkpoint`` (the offset in ``events`` of the last event the rows reflect). States,
their timers, trace rows and the checkpoint always change in one write batch, so after any
crash the store is a consistent prefix of the log and catch-up starts at ``checkpoint + 1``.
"""

from __future__ import annotations

import hashlib
import heapq
import shutil
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path

import orjson
from rocksdict import Options, Rdict, WriteBatch

from orchestrator.engine.records import TimerKind
from orchestrator.engine.state import STATE_VERSION, WorkflowState
from orchestrator.engine.timers import Timer, pending_timers
from orchestrator.errors import StateError
from orchestrator.telemetry import get_logger

log = get_logger(__name__)

WORKFLOW_PREFIX = b"workflow/"
TIMER_PREFIX = b"timer/"
TASK_PREFIX = b"task/"
TRACE_PREFIX = b"trace/"
ORDER = "_order"  # a task's position in its workflow: the order tasks were scheduled in
CHECKPOINT_KEY = b"meta/checkpoint"
VERSION_KEY = b"meta/version"
NO_CHECKPOINT = -1
#: Workflow states kept in memory per partition, most recently used first out last.
CACHE_SIZE = 10_000


def partition_path(state_dir: Path, topic_prefix: str, partition: int) -> Path:
    """Where partition ``partition``'s database lives under ``state_dir``."""
    return state_dir / f"{topic_prefix.rstrip('.') or 'default'}" / f"p{partition:04d}"


class PartitionStore:
    """One partition's workflows in RocksDB, with the events offset they reflect."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        try:
            self._db = Rdict(str(path), options)
        except Exception as exc:
            raise StateError(f"cannot open state store {path}: {exc}") from exc
        version = self._db.get(VERSION_KEY)
        if version is not None and int(version) != STATE_VERSION:
            # The store is only a cache of the log: an old layout is dropped and refolded.
            log.warning(
                "state layout changed; rebuilding from the log",
                path=str(path),
                found=int(version),
                expected=STATE_VERSION,
            )
            self._db.close()
            Rdict.destroy(str(path), options)
            self._db = Rdict(str(path), options)
        self._cache: OrderedDict[str, WorkflowState] = OrderedDict()
        self._traces: OrderedDict[str, bytes] = OrderedDict()
        self._timers: dict[str, dict[str, Timer]] = {}
        self._heap: list[Timer] = []
        self._load_timers()

    def _load_timers(self) -> None:
        for key, value in self._db.items(from_key=TIMER_PREFIX):
            if not isinstance(key, bytes) or not key.startswith(TIMER_PREFIX):
                break
            data = orjson.loads(bytes(value))
            timer = Timer(
                data["due_at"],
                data["workflow_id"],
                data["task_id"],
                data["attempt"],
                TimerKind(data["kind"]),
            )
            self._timers.setdefault(timer.workflow_id, {})[timer.key] = timer
            self._heap.append(timer)
        heapq.heapify(self._heap)

    def due_timers(self, now: int) -> list[Timer]:
        """Take every timer due at ``now``; each is handed out once until a write sets it again."""
        due = []
        while self._heap and self._heap[0].due_at <= now:
            timer = heapq.heappop(self._heap)
            if timer.key in self._timers.get(timer.workflow_id, {}):
                due.append(timer)
        return due

    @property
    def timer_count(self) -> int:
        """How many timers are pending in this partition."""
        return sum(len(timers) for timers in self._timers.values())

    @property
    def checkpoint(self) -> int:
        """Offset in ``events`` of the last event reflected here, or -1 for none."""
        raw = self._db.get(CHECKPOINT_KEY)
        return NO_CHECKPOINT if raw is None else int(raw)

    def get(self, workflow_id: str) -> WorkflowState | None:
        """The stored state of one workflow, or None."""
        cached = self._cache.get(workflow_id)
        if cached is not None:
            self._cache.move_to_end(workflow_id)
            return cached
        raw = self._db.get(WORKFLOW_PREFIX + workflow_id.encode())
        if raw is None:
            return None
        state = self._assemble(workflow_id, bytes(raw))
        self._remember(workflow_id, state)
        return state

    def _assemble(self, workflow_id: str, raw: bytes) -> WorkflowState:
        """A workflow row and its task rows, in scheduling order, as one state."""
        prefix = _task_prefix(workflow_id)
        tasks = []
        for key, value in self._db.items(from_key=prefix):
            if not isinstance(key, bytes) or not key.startswith(prefix):
                break
            tasks.append(orjson.loads(bytes(value)))
        tasks.sort(key=lambda task: task.pop(ORDER))
        return WorkflowState.from_json({**orjson.loads(raw), "tasks": tasks})

    def _remember(self, workflow_id: str, state: WorkflowState) -> None:
        """Keep a written or read state in memory; states are never mutated, so sharing is safe."""
        self._cache[workflow_id] = state
        self._cache.move_to_end(workflow_id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def trace(self, workflow_id: str) -> bytes | None:
        """The stored trace context row of the workflow's current run, or None."""
        cached = self._traces.get(workflow_id)
        if cached is not None:
            return cached
        raw = self._db.get(TRACE_PREFIX + workflow_id.encode())
        if raw is None:
            return None
        self._remember_trace(workflow_id, bytes(raw))
        return bytes(raw)

    def _remember_trace(self, workflow_id: str, raw: bytes) -> None:
        self._traces[workflow_id] = raw
        self._traces.move_to_end(workflow_id)
        while len(self._traces) > CACHE_SIZE:
            self._traces.popitem(last=False)

    def write(
        self,
        states: Mapping[str, WorkflowState],
        checkpoint: int,
        traces: Mapping[str, bytes] | None = None,
    ) -> None:
        """Store ``states`` and trace rows and move the checkpoint, in one atomic write batch."""
        batch = WriteBatch(raw_mode=True)
        for workflow_id, raw in (traces or {}).items():
            batch.put(TRACE_PREFIX + workflow_id.encode(), raw)
        added: list[Timer] = []
        for workflow_id, state in states.items():
            row = state.to_json()
            del row["tasks"]
            batch.put(WORKFLOW_PREFIX + workflow_id.encode(), orjson.dumps(row))
            self._write_tasks(batch, workflow_id, state)
            added.extend(self._retime(batch, workflow_id, state))
        batch.put(CHECKPOINT_KEY, str(checkpoint).encode())
        batch.put(VERSION_KEY, str(STATE_VERSION).encode())
        self._db.write(batch)
        for timer in added:
            heapq.heappush(self._heap, timer)
        for workflow_id, state in states.items():
            self._remember(workflow_id, state)
        for workflow_id, raw in (traces or {}).items():
            self._remember_trace(workflow_id, raw)

    def _write_tasks(self, batch: WriteBatch, workflow_id: str, state: WorkflowState) -> None:
        """Write the task rows that changed since the state this store last held."""
        prefix = _task_prefix(workflow_id)
        previous = self._cache.get(workflow_id)
        if previous is None:
            # Not in memory: a new workflow (nothing to clear) or one the cache evicted, whose
            # stored task rows this write replaces wholesale. Only the latter needs a range
            # tombstone; one per new workflow would pile up and slow every later read.
            if self._db.get(WORKFLOW_PREFIX + workflow_id.encode()) is not None:
                batch.delete_range(prefix, prefix[:-1] + b"\x01")
            previous_tasks = {}
        else:
            previous_tasks = previous.tasks
            for task_id in previous_tasks.keys() - state.tasks.keys():
                batch.delete(prefix + task_id.encode())
        for position, (task_id, task) in enumerate(state.tasks.items()):
            if previous_tasks.get(task_id) is not task:
                batch.put(
                    prefix + task_id.encode(), orjson.dumps({**task.to_json(), ORDER: position})
                )

    def _retime(self, batch: WriteBatch, workflow_id: str, state: WorkflowState) -> list[Timer]:
        """Replace the workflow's timer rows with those its new state asks for; return new ones."""
        old = self._timers.get(workflow_id, {})
        new = {timer.key: timer for timer in pending_timers(state)}
        for key in old.keys() - new.keys():
            batch.delete(TIMER_PREFIX + key.encode())
        added = [timer for key, timer in new.items() if key not in old]
        for timer in added:
            batch.put(TIMER_PREFIX + timer.key.encode(), orjson.dumps(timer.__dict__))
        if new:
            self._timers[workflow_id] = new
        else:
            self._timers.pop(workflow_id, None)
        return added

    def workflows(self) -> Iterator[WorkflowState]:
        """Every stored workflow with its tasks, in key order."""
        for key, value in self._rows():
            yield self._assemble(key[len(WORKFLOW_PREFIX) :].decode(), value)

    def digest(self) -> str:
        """SHA-256 over every workflow and its tasks, to compare two stores' contents."""
        sha = hashlib.sha256()
        for key, value in self._rows():
            state = self._assemble(key[len(WORKFLOW_PREFIX) :].decode(), value)
            sha.update(key + b"\0" + orjson.dumps(state.to_json(), option=orjson.OPT_SORT_KEYS))
        return sha.hexdigest()

    def _rows(self) -> Iterator[tuple[bytes, bytes]]:
        """Raw (key, value) pairs of the workflow table."""
        for key, value in self._db.items(from_key=WORKFLOW_PREFIX):
            if not isinstance(key, bytes) or not key.startswith(WORKFLOW_PREFIX):
                break
            yield key, bytes(value)

    def close(self) -> None:
        """Flush and close the database."""
        self._db.close()

    @staticmethod
    def destroy(path: Path) -> None:
        """Delete a partition's database from disk."""
        shutil.rmtree(path, ignore_errors=True)


def _task_prefix(workflow_id: str) -> bytes:
    """Key prefix of a workflow's task rows (NUL-terminated: ids may contain '/')."""
    return TASK_PREFIX + workflow_id.encode() + b"\0"
