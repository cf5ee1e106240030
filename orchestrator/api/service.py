"""What the HTTP routes do, apart from HTTP: visibility, preconditions, and the records to send.

Writes go to the log (``requests`` and ``definitions``), never to the read model: the read
model only changes when the projector folds the events the processor wrote. Every read is
filtered by the caller's namespaces, and something a caller may not see is reported as not
found, so a token for one namespace cannot even learn the other's workflow ids.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.api.auth import Principal, Role
from orchestrator.api.models import StartRequest
from orchestrator.api.projector import Projector
from orchestrator.api.publisher import Publisher, encode
from orchestrator.api.readstore import ReadStore
from orchestrator.config import Settings
from orchestrator.dsl.model import TaskDef, WorkflowDef
from orchestrator.dsl.validate import parse_definition, validate_set
from orchestrator.engine.records import (
    Record,
    StartWorkflow,
    TaskDefinition,
    WorkflowDefinition,
)
from orchestrator.errors import (
    DefinitionError,
    RequestConflictError,
    WorkflowNotFoundError,
)
from orchestrator.log.codec import CODEC
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import TASKDEF_KEY_PREFIX, Topics

Json = Any
REGISTER_VISIBLE_TIMEOUT_S = 10.0
MAX_SCAN = 100_000


def now_ms() -> int:
    """Wall-clock milliseconds (request timestamps; the processor stamps events itself)."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class SearchQuery:
    """Filters, paging and order of a workflow search."""

    name: str | None = None
    status: str | None = None
    correlation_id: str | None = None
    started_after: int | None = None
    started_before: int | None = None
    text: str | None = None
    offset: int = 0
    limit: int = 20
    ascending: bool = False


class Service:
    """The API's operations over the read model and the log."""

    def __init__(self, settings: Settings, store: ReadStore, projector: Projector) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.store = store
        self.projector = projector
        self.publisher = Publisher(settings)
        self._register_lock = threading.Lock()

    # Workflows ----------------------------------------------------------------------------

    def visible_summary(self, principal: Principal, workflow_id: str) -> dict[str, Json]:
        """A workflow's summary, or WorkflowNotFoundError when absent or not the caller's."""
        summary = self.store.summary(workflow_id)
        if summary is None or not principal.sees(summary["namespace"]):
            raise WorkflowNotFoundError(f"no workflow {workflow_id!r}")
        return summary

    def definition_for_start(
        self, principal: Principal, name: str, version: int | None
    ) -> WorkflowDef:
        """The definition a start names, checked against the caller's namespaces and role."""
        definition = self.projector.definitions.get(name, version)
        if definition is None or not principal.sees(definition.namespace):
            which = f"{name} version {version}" if version else name
            raise WorkflowNotFoundError(f"no workflow definition {which!r}")
        principal.require(Role.OPERATOR, definition.namespace)
        return definition

    async def start(
        self, principal: Principal, request: StartRequest, traceparent: str | None = None
    ) -> str:
        """Check and send a start request; return the workflow id (given, or a new UUID)."""
        definition = self.definition_for_start(principal, request.name, request.version)
        workflow_id = request.workflowId or str(uuid.uuid4())
        record = StartWorkflow(
            workflow_id=workflow_id,
            name=definition.name,
            version=request.version,
            input=request.input,
            correlation_id=request.correlationId,
            requested_at=now_ms(),
        )
        await self.send_request(record, traceparent)
        return workflow_id

    async def send_request(self, record: Record, traceparent: str | None = None) -> None:
        """Produce a request record to its workflow's partition."""
        headers = {"traceparent": traceparent} if traceparent else None
        await self.publisher.send(
            self.topics.requests,
            record.workflow_id,
            record,
            partition=partition_for(record.workflow_id, self.settings.partitions),
            headers=headers,
        )

    def search(self, principal: Principal, query: SearchQuery) -> tuple[int, list[Json]]:
        """Matching summaries (newest first unless ``ascending``), and how many match in all."""
        total, page = 0, []
        for summary in self._matches(principal, query):
            if query.offset <= total < query.offset + query.limit:
                page.append({k: v for k, v in summary.items() if k != "text"})
            total += 1
        return total, page

    def _matches(self, principal: Principal, query: SearchQuery) -> Iterator[dict[str, Json]]:
        field_name, value = _best_index(query)
        ids = list(self.store.newest(field_name, value))
        if query.ascending:
            ids.reverse()
        text = query.text.lower() if query.text else None
        for workflow_id in ids[:MAX_SCAN]:
            summary = self.store.summary(workflow_id)
            visible = summary is not None and principal.sees(summary["namespace"])
            if visible and _matches(summary, query, text):  # type: ignore[arg-type]
                yield summary  # type: ignore[misc]

    def human_tasks(
        self, principal: Principal, assignee: str | None, group: str | None
    ) -> list[dict[str, Json]]:
        """Waiting HUMAN tasks the caller may see, filtered by assignee and group."""
        return [
            row
            for row in self.store.human_tasks()
            if principal.sees(row["namespace"])
            and (assignee is None or row.get("assignee") == assignee)
            and (group is None or row.get("group") == group)
        ]

    # Definitions --------------------------------------------------------------------------

    def visible_definitions(self, principal: Principal, name: str | None) -> list[WorkflowDef]:
        """Every version of every definition the caller may see (only ``name`` when given)."""
        return [
            d
            for d in self.projector.definitions.workflows()
            if principal.sees(d.namespace) and (name is None or d.name == name)
        ]

    def register(self, principal: Principal, documents: list[Json]) -> list[str]:
        """Validate and publish workflow definitions; return warnings. Admin in the namespace."""
        definitions = [
            parse_definition(document, source=f"definition {index}")
            for index, document in enumerate(documents)
        ]
        for definition in definitions:
            principal.require(Role.ADMIN, definition.namespace)
            self._check_owner(definition.name, definition.namespace)
        with self._register_lock:  # one V8 isolate at a time for the script syntax check
            warnings = validate_set(definitions, self.projector.definitions)
        records = [
            (definition.key, _definition_record(definition, f"definition {index}"))
            for index, definition in enumerate(definitions)
        ]
        self._publish_definitions(records)
        self._await_visible(lambda: all(self._registered(d) for d in definitions))
        return [str(warning) for warning in warnings]

    def _registered(self, definition: WorkflowDef) -> bool:
        return self.projector.definitions.get(definition.name, definition.version) == definition

    def _check_owner(self, name: str, namespace: str) -> None:
        for existing in self.projector.definitions.workflows():
            if existing.name == name and existing.namespace != namespace:
                raise RequestConflictError(
                    f"workflow name {name!r} belongs to another namespace; choose another name"
                )

    def delete_definition(self, principal: Principal, name: str, version: int) -> None:
        """Delete one version (a tombstone on the compacted topic). Admin in the namespace."""
        definition = self.projector.definitions.get(name, version)
        if definition is None or not principal.sees(definition.namespace):
            raise WorkflowNotFoundError(f"no workflow definition {name!r} version {version}")
        principal.require(Role.ADMIN, definition.namespace)
        self.publisher.send_sync(self.topics.definitions, definition.key, None)
        self._await_visible(lambda: self.projector.definitions.get(name, version) is None)

    def visible_task_definitions(self, principal: Principal) -> list[TaskDef]:
        """Task definitions the caller may see."""
        return [
            t for t in self.projector.definitions.task_definitions() if principal.sees(t.namespace)
        ]

    def register_task_definitions(self, principal: Principal, documents: list[Json]) -> None:
        """Validate and publish task definitions. Admin in each one's namespace."""
        task_defs = [TaskDef.model_validate(document) for document in documents]
        for task_def in task_defs:
            principal.require(Role.ADMIN, task_def.namespace)
            existing = self.projector.definitions.task_def(task_def.name)
            if existing is not None and existing.namespace != task_def.namespace:
                raise RequestConflictError(
                    f"task type {task_def.name!r} belongs to another namespace"
                )
        records = [
            (
                TASKDEF_KEY_PREFIX + task_def.name,
                TaskDefinition(
                    name=task_def.name,
                    definition=task_def.model_dump(mode="json", exclude_none=True),
                    registered_at=now_ms(),
                ),
            )
            for task_def in task_defs
        ]
        self._publish_definitions(records)
        self._await_visible(
            lambda: all(self.projector.definitions.task_def(t.name) == t for t in task_defs)
        )

    def delete_task_definition(self, principal: Principal, name: str) -> None:
        """Delete a task definition. Admin in its namespace."""
        task_def = self.projector.definitions.task_def(name)
        if task_def is None or not principal.sees(task_def.namespace):
            raise WorkflowNotFoundError(f"no task definition {name!r}")
        principal.require(Role.ADMIN, task_def.namespace)
        self.publisher.send_sync(self.topics.definitions, TASKDEF_KEY_PREFIX + name, None)
        self._await_visible(lambda: self.projector.definitions.task_def(name) is None)

    def _publish_definitions(self, records: Sequence[tuple[str, Any]]) -> None:
        # Every record encodes before any is published: a list registers whole or not at all.
        encoded = [(key, encode(record), CODEC.type_name(record)) for key, record in records]
        for key, value, type_name in encoded:
            self.publisher.send_sync(self.topics.definitions, key, value, type_name)

    def _await_visible(self, predicate: Any) -> None:
        # Read-after-write: the caller's next GET sees what it just registered.
        if not self.projector.wait_for(predicate, REGISTER_VISIBLE_TIMEOUT_S):
            raise DefinitionError("registered, but not yet visible to this API instance")

    def close(self) -> None:
        """Flush and stop the publisher."""
        self.publisher.close()


def _definition_record(definition: WorkflowDef, source: str) -> WorkflowDefinition:
    try:
        document = definition.to_json()
    except ValueError as exc:  # pydantic's serialization depth limit
        raise DefinitionError(f"cannot be serialized: {exc}", source=source) from exc
    return WorkflowDefinition(
        name=definition.name,
        version=definition.version,
        definition=document,
        registered_at=now_ms(),
    )


def _best_index(query: SearchQuery) -> tuple[str | None, str | None]:
    if query.correlation_id is not None:
        return "correlationId", query.correlation_id
    if query.name is not None:
        return "name", query.name
    if query.status is not None:
        return "status", query.status
    return None, None


def _matches(summary: dict[str, Json], query: SearchQuery, text: str | None) -> bool:
    checks = (
        query.name is None or summary["name"] == query.name,
        query.status is None or summary["status"] == query.status,
        query.correlation_id is None or summary["correlationId"] == query.correlation_id,
        query.started_after is None or summary["startTime"] >= query.started_after,
        query.started_before is None or summary["startTime"] < query.started_before,
        text is None or text in summary.get("text", "") or text in summary["workflowId"],
    )
    return all(checks)
