"""Golden event logs fold to the state recorded with them.

The logs in ``logs/`` are history: they were produced once by ``tests/replay/record.py``. If a
change to ``evolve`` (or to the event or state types) alters what an existing log means, these
tests fail. Do not re-record to make them pass; make the change keep old logs' meaning. Fields
added to the state since a log was recorded are ignored; every recorded field must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator.engine import WorkflowState, fold
from orchestrator.engine.records import EVENT_TYPES, AnyEvent

LOGS = Path(__file__).resolve().parent / "logs"
GOLDEN = sorted(LOGS.glob("*.json"))
EVENT_CLASSES = {cls.__name__: cls for cls in EVENT_TYPES}


def load(path: Path) -> dict[str, Any]:
    """One golden file: description, events and the recorded state."""
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document


def event_from_json(data: dict[str, Any]) -> AnyEvent:
    """The event dataclass a golden entry describes, by its ``type`` field."""
    fields = dict(data)
    type_name = fields.pop("type")
    cls = EVENT_CLASSES.get(type_name)
    assert cls is not None, f"golden log holds an event type the engine no longer has: {type_name}"
    event: AnyEvent = cls(**fields)  # type: ignore[assignment]
    return event


def stored(state: WorkflowState | None) -> Any:
    """A state as the store would hold it: its JSON, through orjson."""
    return None if state is None else orjson.loads(orjson.dumps(state.to_json()))


def known_part(actual: Any, recorded: Any) -> Any:
    """``actual`` cut to the fields ``recorded`` has; ``v`` (the storage layout) may move on."""
    if isinstance(actual, dict) and isinstance(recorded, dict):
        return {
            k: recorded[k] if k == "v" else known_part(actual.get(k), recorded[k]) for k in recorded
        }
    if isinstance(actual, list) and isinstance(recorded, list) and len(actual) == len(recorded):
        return [known_part(a, r) for a, r in zip(actual, recorded, strict=True)]
    return actual


def test_golden_logs_cover_every_ending() -> None:
    """The recorded logs include a completed, a failed, a terminated and a rejected run."""
    assert {"completed", "failed", "terminated", "rejected"} <= {p.stem for p in GOLDEN}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_log_folds_to_recorded_state(path: Path) -> None:
    """Folding a golden log's events gives exactly the state recorded with it."""
    document = load(path)
    events = [event_from_json(entry) for entry in document["events"]]
    assert known_part(stored(fold(events)), document["state"]) == document["state"], (
        f"{path.name}: folding this log no longer gives the recorded state; "
        "a change to evolve or the event types altered the meaning of history"
    )


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_state_loads_as_workflow_state(path: Path) -> None:
    """The recorded state still loads with WorkflowState.from_json and writes back the same."""
    recorded = load(path)["state"]
    assert known_part(stored(WorkflowState.from_json(recorded)), recorded) == recorded


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_log_is_a_well_formed_history(path: Path) -> None:
    """A golden log belongs to one workflow and numbers its events 1..n."""
    events = [event_from_json(entry) for entry in load(path)["events"]]
    assert len({e.workflow_id for e in events}) == 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
