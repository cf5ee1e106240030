"""What the chaos run must leave in the log: each workflow where its input says, exactly once.

Every check returns problems as readable lines (workflow id first) instead of failing at the
first, so one run reports everything it found.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from orchestrator.audit import verify_log
from orchestrator.config import Settings
from orchestrator.engine.evolve import fold
from orchestrator.engine.records import (
    TERMINAL_EVENTS,
    Event,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskScheduled,
    TaskTimedOut,
    WorkflowFailed,
    WorkflowStarted,
)
from orchestrator.log.kafka import make_consumer
from orchestrator.log.topics import Topics
from orchestrator.processor.rebuild import digest, rebuild
from orchestrator.processor.store import PartitionStore, partition_path
from tests.chaos.cluster import Cluster
from tests.chaos.workload import REF_POLICIES, WORKFLOW_TIMEOUT_S, Case, retry_delay_ms

#: Timers fire on the processor's batch loop; an early firing beyond this is a bug.
CLOCK_SLACK_MS = 5


def run_problems(
    settings: Settings, planned: list[Case], events: dict[str, list[Event]]
) -> list[str]:
    """Every check over the whole run: each case, the registry, the verifier, dead letters."""
    problems: list[str] = []
    unexpected = set(events) - {case.workflow_id for case in planned}
    if unexpected:
        problems.append(f"workflows nobody started: {sorted(unexpected)[:10]}")
    for case in planned:
        history = events.get(case.workflow_id, [])
        problems += exactly_once(case.workflow_id, history)
        ended = expected_end(case, history)
        problems += ended
        if ended:
            problems.append(f"{case.workflow_id}: {outline(history)}")
        problems += timing(case, history)
    problems += registry_used([event for history in events.values() for event in history])
    problems += [f"verifier: {violation}" for violation in verify_log(settings).violations]
    letters = dead_letter_keys(settings)
    problems += [
        f"{case.workflow_id}: its junk result bytes never reached dead-letters"
        for case in planned
        if case.name == "chaos_garbage" and not letters.get(case.workflow_id)
    ]
    return problems


def exactly_once(workflow_id: str, events: list[Event]) -> list[str]:
    """Gap-free seqs, each attempt scheduled and completed at most once, one terminal event."""
    problems = []
    seqs = [e.seq for e in events]
    if seqs != list(range(1, len(events) + 1)):
        problems.append(f"{workflow_id}: seqs are not 1..{len(events)}: {seqs}")
    for kind in (TaskScheduled, TaskCompleted):
        counts = Counter((e.task_id, e.attempt) for e in events if isinstance(e, kind))
        twice = {key: n for key, n in counts.items() if n > 1}
        if twice:
            problems.append(f"{workflow_id}: {kind.__name__} more than once: {twice}")
    terminal = [type(e).__name__ for e in events if isinstance(e, TERMINAL_EVENTS)]
    if len(terminal) != 1:
        problems.append(f"{workflow_id}: {len(terminal)} terminal events {terminal}")
    return problems


def expected_end(case: Case, events: list[Event]) -> list[str]:
    """Status, output, failing task, attempt counts and timeouts as the case's input dictates."""
    state = fold(events)  # type: ignore[arg-type]
    if state is None:
        return [f"{case.workflow_id}: no events"]
    wid = case.workflow_id
    problems = []
    if str(state.status) != case.status:
        problems.append(f"{wid}: status {state.status} ({state.reason}), expected {case.status}")
    if case.status == "COMPLETED" and state.output != case.output:
        problems.append(f"{wid}: output {state.output}, expected {case.output}")
    refs = {e.task_id: e.ref_name for e in events if isinstance(e, TaskScheduled)}
    failed = next((e for e in events if isinstance(e, WorkflowFailed)), None)
    if case.failed_ref is not None:
        named = refs.get(failed.task_id or "") if failed is not None else None
        if named != case.failed_ref:
            problems.append(f"{wid}: the failure names task {named}, expected {case.failed_ref}")
    if case.status == "TIMED_OUT" and (failed is None or not failed.timed_out):
        problems.append(f"{wid}: TIMED_OUT without a timed-out WorkflowFailed")
    last_attempt: dict[str, int] = {}
    for e in events:
        if isinstance(e, TaskScheduled):
            last_attempt[e.ref_name] = max(last_attempt.get(e.ref_name, 0), e.attempt)
    for ref, want in case.attempts.items():
        got = last_attempt.get(ref, 0)
        ok = got >= want[1] if isinstance(want, tuple) else got == want
        if not ok:
            problems.append(f"{wid}: {ref} ended at attempt {got}, expected {want}")
    timed_out = {refs.get(e.task_id) for e in events if isinstance(e, TaskTimedOut)}
    problems += [
        f"{wid}: {ref}'s first attempt never timed out"
        for ref in case.timed_out_refs
        if ref not in timed_out
    ]
    return problems


def timing(case: Case, events: list[Event]) -> list[str]:
    """Retry delays follow each task's backoff policy; no timer fires before it is due."""
    wid, problems = case.workflow_id, []
    scheduled: dict[tuple[str, int], TaskScheduled] = {}
    started: dict[tuple[str, int], int] = {}  # when each attempt went to the workers
    for event in events:
        match event:
            case TaskScheduled():
                key = (event.task_id, event.attempt)
                scheduled[key] = event
                if event.dispatch_at is None:
                    started[key] = event.at
                if event.attempt > 1:
                    problems += _retry_delay(case, event)
            case TaskDispatched():
                key = (event.task_id, event.attempt)
                started[key] = event.at
                due = scheduled[key].dispatch_at or 0
                if event.at + CLOCK_SLACK_MS < due:
                    problems.append(f"{wid}: {key} dispatched {due - event.at} ms early")
            case TaskTimedOut():
                problems += _timeout_due(case, event, scheduled, started)
            case WorkflowFailed() if event.timed_out and event.task_id is None:
                begun = next(e.at for e in events if isinstance(e, WorkflowStarted))
                early = begun + WORKFLOW_TIMEOUT_S * 1000 - event.at
                if early > CLOCK_SLACK_MS:
                    problems.append(f"{wid}: the workflow timed out {early} ms early")
            case _:
                pass
    return problems


def _retry_delay(case: Case, event: TaskScheduled) -> list[str]:
    policy = REF_POLICIES.get((case.name, event.ref_name))
    if policy is None:
        return [f"{case.workflow_id}: {event.ref_name} retried without a retry policy"]
    want = retry_delay_ms(policy, event.attempt - 1)
    problems = []
    if (event.retry_delay_ms or 0) != want:
        problems.append(
            f"{case.workflow_id}: attempt {event.attempt} of {event.ref_name} waits "
            f"{event.retry_delay_ms} ms, expected {want} ms ({policy.get('retryLogic')})"
        )
    due = event.dispatch_at if event.dispatch_at is not None else event.at
    if due - event.at != want:
        problems.append(
            f"{case.workflow_id}: attempt {event.attempt} of {event.ref_name} is due "
            f"{due - event.at} ms after it was scheduled, expected {want} ms"
        )
    return problems


def _timeout_due(
    case: Case,
    event: TaskTimedOut,
    scheduled: dict[tuple[str, int], TaskScheduled],
    started: dict[tuple[str, int], int],
) -> list[str]:
    key = (event.task_id, event.attempt)
    ref = scheduled[key].ref_name
    policy = REF_POLICIES.get((case.name, ref), {})
    field = "responseTimeoutSeconds" if event.kind == "RESPONSE_TIMEOUT" else "timeoutSeconds"
    seconds = int(policy.get(field, 0))
    if key not in started or not seconds:
        return [
            f"{case.workflow_id}: {ref} attempt {event.attempt} timed out ({event.kind}) "
            f"without being dispatched or without a {field}"
        ]
    early = started[key] + seconds * 1000 - event.at
    if early > CLOCK_SLACK_MS:
        return [f"{case.workflow_id}: {ref} attempt {event.attempt} timed out {early} ms early"]
    return []


def outline(events: list[Event]) -> str:
    """A workflow's history on one line: seq, event type, task and attempt."""
    parts = []
    for event in events:
        task = getattr(event, "task_id", None)
        where = f"({task}#{getattr(event, 'attempt', '')})" if task else ""
        parts.append(f"{event.seq}:{type(event).__name__}{where}")
    return " ".join(parts)


def registry_used(events: list[Event]) -> list[str]:
    """r3 of chaos_retry has no inline taskDefinition: it must run under the registered one."""
    return [
        f"{e.workflow_id}: r3 attempt {e.attempt} ran under {e.policy}, not the registered TaskDef"
        for e in events
        if isinstance(e, TaskScheduled)
        and e.ref_name == "r3"
        and (e.policy or {}).get("retryLogic") != "EXPONENTIAL_BACKOFF"
    ]


def failures_reasons(events: list[Event]) -> Counter[str]:
    """How often each kind of attempt failure happened (for the run's summary)."""
    kinds: Counter[str] = Counter()
    for event in events:
        if isinstance(event, TaskFailed):
            kinds[f"TaskFailed {event.error_type or 'reported'}"] += 1
        elif isinstance(event, TaskTimedOut):
            kinds[f"TaskTimedOut {event.kind}"] += 1
    return kinds


def most_attempts(events: list[Event], workflow_names: dict[str, str]) -> dict[str, int]:
    """The highest attempt each task reference reached, by ``workflow name/ref``."""
    most: dict[str, int] = {}
    for event in events:
        if isinstance(event, TaskScheduled) and event.attempt > 1:
            key = f"{workflow_names.get(event.workflow_id, '?')[6:]}/{event.ref_name}"
            most[key] = max(most.get(key, 0), event.attempt)
    return dict(sorted(most.items()))


def dead_letter_keys(settings: Settings, timeout: float = 60.0) -> Counter[str]:
    """The keys of every record in ``dead-letters`` (read to its end)."""
    topic = Topics.from_settings(settings).dead_letters
    consumer: Any = make_consumer(settings, None, **{"enable.partition.eof": True})
    keys: Counter[str] = Counter()
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        numbers = list(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, n, 0) for n in numbers])
        open_partitions = set(numbers)
        deadline = time.monotonic() + timeout
        while open_partitions and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_partitions.discard(message.partition())
                    continue
                keys[(message.key() or b"").decode(errors="replace")] += 1
    finally:
        consumer.close()
    return keys


def rebuilt_matches_live(
    settings: Settings, cluster: Cluster, owners: dict[int, list[str]], root: Path
) -> list[str]:
    """Each partition's store at its last owner equals a rebuild of the partition from the log."""
    rebuilt = settings.model_copy(update={"state_dir": root / "rebuilt"})
    rebuild(rebuilt)
    fresh = digest(rebuilt)
    problems = []
    for partition, (owner,) in owners.items():
        member = next(m for m in cluster.processors if m.name == owner)
        path = partition_path(cluster.state_dir(member), settings.topic_prefix, partition)
        store = PartitionStore(path)
        try:
            live = store.digest()
        finally:
            store.close()
        if live != fresh.get(partition):
            problems.append(f"partition {partition}: {owner}'s store differs from a rebuild")
    return problems
