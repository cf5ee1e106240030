"""Conductor definitions from tests/conductor_defs run unchanged on the pure engine, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.dsl import parse_definition
from orchestrator.dsl.model import SYSTEM_TYPES, WorkflowDef, WorkflowTask, walk_tasks
from orchestrator.dsl.validate import problems, validate_set
from orchestrator.engine.records import WorkflowStatus
from orchestrator.engine.state import WorkflowState
from tests.conductor_defs.cases import Case, cases, definition_files, definitions, sources
from tests.conductor_defs.workers import HANDLERS
from tests.simulation import Simulation

Json = Any
CASES = cases()
DEFINITIONS = definitions()
#: Operators the cases need not cover: FORK is FORK_JOIN's alias.
UNCOVERED = frozenset({"FORK", "CONTINUE_AS_NEW"})  # CONTINUE_AS_NEW is no Conductor task
#: Operators that need a network, kept out of these cases.
NETWORK_TYPES = frozenset({"HTTP", "KAFKA_PUBLISH", "EVENT"})


def waiting_on(state: WorkflowState, ref: str) -> bool:
    """Whether the workflow waits for a signal to the task ``ref``."""
    return any(
        task.ref_name == ref and task.awaiting_signal and not task.status.terminal
        for task in state.tasks.values()
    )


def run_case(case: Case) -> WorkflowState:
    """Run ``case`` on a fresh simulation: start, signal, fire timers; the final state."""
    sim = Simulation(DEFINITIONS, HANDLERS)
    sim.start(case.name, case.input, workflow_id="case")
    for signal in case.signals:
        sim.run(advance_clock=True)
        assert waiting_on(sim.state("case"), signal.ref), f"{signal.ref} is not waiting"
        sim.signal("case", signal.ref, signal.output)
    sim.run(advance_clock=True)
    return sim.state("case")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_reaches_its_expected_status_and_output(case: Case) -> None:
    """Each definition, run with its case's input and signals, ends as the case expects."""
    state = run_case(case)
    assert (str(state.status), state.output) == (case.status, case.output), state.reason
    assert case.reason in (state.reason or "")


def test_every_definition_passes_registration_checks() -> None:
    """Together, the definitions have no problem, no script error and no sub-workflow warning."""
    for definition in DEFINITIONS:
        assert problems(definition) == []
    assert validate_set(DEFINITIONS, sources=sources()) == []


def test_each_file_holds_the_workflow_it_is_named_after() -> None:
    """NAME.json defines workflow NAME, version 1, in Conductor's schema version 2 with an owner."""
    for path, definition in zip(definition_files(), DEFINITIONS, strict=True):
        assert (definition.name, definition.version) == (path.stem, 1)
        assert definition.schemaVersion == 2
        assert definition.ownerEmail
        assert definition.description


def test_cases_cover_every_operator_and_outcome() -> None:
    """Every non-network operator appears in a definition; the cases end in each terminal status."""
    used = {task.type for d in DEFINITIONS for task in all_tasks(d)}
    assert (SYSTEM_TYPES - UNCOVERED) | {"SIMPLE"} <= used
    assert not used & NETWORK_TYPES
    assert {case.status for case in CASES} == {"COMPLETED", "FAILED", "TERMINATED"}
    assert len(CASES) >= 15


def test_every_worker_task_has_a_handler() -> None:
    """Each SIMPLE task a definition schedules has a handler in workers.py (but one never run)."""
    names = {t.name for d in DEFINITIONS for t in all_tasks(d) if t.type == "SIMPLE"}
    assert names - set(HANDLERS) == {"never_runs"}


def all_tasks(definition: WorkflowDef) -> list[WorkflowTask]:
    """Every task of ``definition``, inline sub-workflows included."""
    found: list[WorkflowTask] = []
    for task in walk_tasks(definition.tasks):
        found.append(task)
        params = task.subWorkflowParam
        if params is not None and params.workflowDefinition is not None:
            found.extend(all_tasks(params.workflowDefinition))
    return found


# Conductor behaviours the cases do not show ----------------------------------------------------


def test_sub_workflow_name_may_be_an_expression() -> None:
    """A SUB_WORKFLOW whose subWorkflowParam.name is ${workflow.input.x} runs the named child."""
    parent = parse_definition(
        {
            "name": "label_any",
            "tasks": [
                {
                    "name": "label",
                    "taskReferenceName": "label",
                    "type": "SUB_WORKFLOW",
                    "inputParameters": {"orderId": "ORD-1", "weightKg": 1},
                    "subWorkflowParam": {"name": "${workflow.input.child}"},
                }
            ],
            "outputParameters": {"carrier": "${label.output.carrier}"},
        }
    )
    sim = Simulation([*DEFINITIONS, parent], HANDLERS)
    sim.start("label_any", {"child": "shipping_label"})
    assert sim.state().status is WorkflowStatus.COMPLETED, sim.state().reason
    assert sim.state().output == {"carrier": "ups"}
