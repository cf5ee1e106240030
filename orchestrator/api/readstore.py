"""The read model's RocksDB store: workflow states, their events, and the indexes search needs.

It is a projection of the ``events`` topic, never written by anything but
:class:`~orchestrator.api.projector.Projector`, and it can be deleted and refolded from the log
at any time. Rows (keys are bytes, values orjson):

- ``w/<id>``: the folded WorkflowState; ``s/<id>``: its summary (what a search returns)
- ``e/<id>/<seq>``: every event of the workflow, for history
- ``i/<field>/<value>/<start ms>/<id>``: search indexes on time (``t``, no value), name,
  status, correlation id and namespace; newest first by reverse iteration
- ``h/<id>/<task id>``: HUMAN tasks waiting for someone
- ``o/<partition>``: the last events offset folded, written in the same batch as the rows
- ``m``: the aggregated metrics (see ``readmetrics``)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Options, Rdict, WriteBatch

from orchestrator.engine.state import STATE_VERSION, WorkflowState
from orchestrator.errors import StateError

Json = Any
LAYOUT_KEY = b"v"
# The summary keeps this much of the input's text for free-text search.
SEARCH_TEXT_LIMIT = 4096
INDEXED_FIELDS = ("name", "status", "correlationId", "namespace")


def summary_of(state: WorkflowState) -> dict[str, Json]:
    """The fields a workflow list shows, camelCase as the API returns them."""
    definition = state.definition or {}
    return {
        "workflowId": state.workflow_id,
        "name": state.name,
        "version": state.version,
        "namespace": definition.get("namespace", "default"),
        "status": str(state.status),
        "correlationId": state.correlation_id,
        "startTime": state.created_at,
        "updateTime": state.updated_at,
        "endTime": state.updated_at if state.status.terminal else None,
        "reason": state.reason,
        "parentWorkflowId": (state.parent or {}).get("workflow_id"),
    }


def _index_keys(summary: Mapping[str, Json]) -> list[bytes]:
    start = f"{summary['startTime']:013d}/{summary['workflowId']}"
    keys = [f"i/t//{start}".encode()]
    for name in INDEXED_FIELDS:
        value = summary.get(name)
        if value is not None:
            keys.append(f"i/{name}/{value}/{start}".encode())
    return keys


@dataclass
class Change:
    """One workflow's rows to write: its new state, summary and the events folded into it."""

    state: WorkflowState
    before: dict[str, Json] | None
    events: list[dict[str, Json]] = field(default_factory=list)


class ReadStore:
    """The read model's database (one for all partitions)."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        try:
            self._db = Rdict(str(path), options)
        except Exception as exc:
            raise StateError(f"cannot open the read model at {path}: {exc}") from exc
        layout = self._db.get(LAYOUT_KEY)
        if layout is not None and int(layout) != STATE_VERSION:
            # A projection of the log: an old layout is dropped and refolded, never migrated.
            self._db.close()
            Rdict.destroy(str(path), options)
            self._db = Rdict(str(path), options)

    def clear(self) -> None:
        """Delete every row (the read model is refolded from the log)."""
        batch = WriteBatch(raw_mode=True)
        batch.delete_range(b"", b"\xff")
        self._db.write(batch)

    def offsets(self) -> dict[int, int]:
        """The last folded offset of every partition seen so far."""
        return {int(key[2:]): int(value) for key, value in self._scan(b"o/") if key[2:].isdigit()}

    def state(self, workflow_id: str) -> WorkflowState | None:
        """The folded state of one workflow, or None."""
        raw = self._db.get(f"w/{workflow_id}".encode())
        return None if raw is None else WorkflowState.from_json(orjson.loads(raw))

    def summary(self, workflow_id: str) -> dict[str, Json] | None:
        """One workflow's summary row, or None."""
        raw = self._db.get(f"s/{workflow_id}".encode())
        return None if raw is None else orjson.loads(raw)

    def events(self, workflow_id: str) -> list[dict[str, Json]]:
        """Every event of a workflow, in order, as JSON objects."""
        return [orjson.loads(value) for _, value in self._scan(f"e/{workflow_id}/".encode())]

    def human_tasks(self) -> Iterator[dict[str, Json]]:
        """Every HUMAN task that waits for someone."""
        for _, value in self._scan(b"h/"):
            yield orjson.loads(value)

    def metrics(self) -> dict[str, Json] | None:
        """The aggregated metrics row."""
        raw = self._db.get(b"m")
        return None if raw is None else orjson.loads(raw)

    def newest(self, field_name: str | None, value: str | None) -> Iterator[str]:
        """Workflow ids on one index (all when ``field_name`` is None), newest start first."""
        prefix = f"i/{field_name}/{value}/" if field_name else "i/t//"
        raw_prefix = prefix.encode()
        iterator = self._db.iter()
        iterator.seek_for_prev(raw_prefix + b"\xff")
        while iterator.valid():
            key = iterator.key()
            if not key.startswith(raw_prefix):
                break
            yield key.rsplit(b"/", 1)[1].decode()
            iterator.prev()

    def write(
        self, changes: Mapping[str, Change], offsets: Mapping[int, int], metrics: Json
    ) -> None:
        """Write changed workflows, their events, indexes, offsets and metrics in one batch."""
        batch = WriteBatch(raw_mode=True)
        batch.put(LAYOUT_KEY, str(STATE_VERSION).encode())
        for workflow_id, change in changes.items():
            self._write_workflow(batch, workflow_id, change)
        for partition, offset in offsets.items():
            batch.put(f"o/{partition}".encode(), str(offset).encode())
        batch.put(b"m", orjson.dumps(metrics))
        self._db.write(batch)

    def _write_workflow(self, batch: WriteBatch, workflow_id: str, change: Change) -> None:
        summary = summary_of(change.state)
        summary["text"] = _search_text(change.state.input)
        old_keys = set(_index_keys(change.before)) if change.before else set()
        new_keys = set(_index_keys(summary))
        for key in old_keys - new_keys:
            batch.delete(key)
        for key in new_keys - old_keys:
            batch.put(key, b"")
        batch.put(f"w/{workflow_id}".encode(), orjson.dumps(change.state.to_json()))
        batch.put(f"s/{workflow_id}".encode(), orjson.dumps(summary))
        for event in change.events:
            batch.put(f"e/{workflow_id}/{event['seq']:010d}".encode(), orjson.dumps(event))
        self._write_human_tasks(batch, change.state)

    def _write_human_tasks(self, batch: WriteBatch, state: WorkflowState) -> None:
        prefix = f"h/{state.workflow_id}/".encode()
        # Rows are rewritten whole: a rerun or retry may have removed tasks.
        batch.delete_range(prefix, prefix[:-1] + b"0")
        if state.status.terminal:
            return
        for task in state.tasks.values():
            if task.task_type != "HUMAN" or task.status.terminal:
                continue
            key = prefix + task.task_id.encode()
            given = task.input if isinstance(task.input, dict) else {}
            # After an escalation the task's output names who holds it now.
            held = task.output if isinstance(task.output, dict) else {}
            holder = held if held.get("escalationLevel") else given
            row = {
                "workflowId": state.workflow_id,
                "workflowName": state.name,
                "namespace": (state.definition or {}).get("namespace", "default"),
                "taskId": task.task_id,
                "refName": task.ref_name,
                "assignee": holder.get("assignee"),
                "group": holder.get("group") or holder.get("assignmentGroup"),
                "dueAt": task.wait_until,
                "escalationLevel": int(held.get("escalationLevel") or 0),
                "input": task.input,
                "scheduledTime": task.scheduled_at,
            }
            batch.put(key, orjson.dumps(row))

    def _scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        iterator = self._db.iter()
        iterator.seek(prefix)
        while iterator.valid():
            key = iterator.key()
            if not key.startswith(prefix):
                break
            yield key, iterator.value()
            iterator.next()

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _search_text(value: Json) -> str:
    if value is None:
        return ""
    return orjson.dumps(value).decode()[:SEARCH_TEXT_LIMIT].lower()
