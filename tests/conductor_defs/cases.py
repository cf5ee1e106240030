"""The definitions of this folder and their cases, loaded for the unit and integration tests.

``NAME.json`` is a Conductor workflow definition; ``NAME.case.json`` beside it says how to run
it and what must come out::

    {"input": {...},
     "signals": [{"ref": "task_ref", "output": {...}}],
     "expect": {"status": "COMPLETED", "output": {...}, "reason": "text in the reason"}}

Signals go, in order, to HUMAN (or WAIT) tasks once the workflow waits on them; WAIT durations
pass on their own (the simulation moves its clock, the broker test waits for real). ``reason``
is optional: text the workflow's reason (why it failed or was terminated) must contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from orchestrator.dsl.model import WorkflowDef
from orchestrator.dsl.validate import load_definition_file

Json = Any
FOLDER = Path(__file__).resolve().parent
CASE_SUFFIX = ".case.json"


@dataclass(frozen=True)
class Signal:
    """Output to complete a waiting task with."""

    ref: str
    output: dict[str, Json]


@dataclass(frozen=True)
class Case:
    """One run of one definition and the result it must reach."""

    name: str
    input: dict[str, Json]
    signals: tuple[Signal, ...]
    status: str
    output: Json
    reason: str = ""


def definition_files() -> list[Path]:
    """Every definition file of the folder, by name."""
    return sorted(p for p in FOLDER.glob("*.json") if not p.name.endswith(CASE_SUFFIX))


def definitions() -> list[WorkflowDef]:
    """Every definition of the folder, parsed (children of sub-workflows included)."""
    return [definition for path in definition_files() for definition in load_definition_file(path)]


def sources() -> dict[str, str]:
    """The file each definition comes from, by ``name:version``."""
    return {d.key: str(path) for path in definition_files() for d in load_definition_file(path)}


def load_case(definition_file: Path) -> Case:
    """The case beside ``definition_file``."""
    name = definition_file.name.removesuffix(".json")
    document = orjson.loads(definition_file.with_name(name + CASE_SUFFIX).read_bytes())
    return Case(
        name=name,
        input=document["input"],
        signals=tuple(Signal(s["ref"], s.get("output", {})) for s in document.get("signals", [])),
        status=document["expect"]["status"],
        output=document["expect"]["output"],
        reason=document["expect"].get("reason", ""),
    )


def cases() -> list[Case]:
    """The case of every definition, by name."""
    return [load_case(path) for path in definition_files()]
