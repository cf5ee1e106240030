"""The data-analysis example end to end: broker, processor, its worker and the fake LLM server.

The tests share one :class:`ExampleStack` of :data:`examples.data_analysis.EXAMPLE` on the
session's broker: a clean run with exact statistics, a chart and a report; a run whose processor
is killed once ``clean`` has completed; and inputs that must fail the run with a clear reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.common import ExampleStack, Run
from examples.data_analysis import EXAMPLE
from examples.data_analysis.chart import PNG_SIGNATURE
from orchestrator.config import Settings
from orchestrator.engine.records import (
    Event,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    WorkflowCompleted,
)
from orchestrator.engine.state import WorkflowState
from tests.integration.conftest import shared_example_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Json = Any
WAIT_S = 60.0
HEADLINE = "West leads revenue with 2,550 across 10 clean orders"
DROPPED = {"blank": 2, "malformed": 1, "unparsable": 2, "duplicate": 2}
STATS = {
    "units": {"count": 10, "mean": 7.8, "median": 6.5, "min": 1, "max": 20, "stddev": 6.391},
    "unit_price": {
        "count": 10,
        "mean": 378.65,
        "median": 7.25,
        "min": 2.5,
        "max": 1250.0,
        "stddev": 601.3005,
    },
    "revenue": {
        "count": 10,
        "mean": 528.0,
        "median": 49.0,
        "min": 17.5,
        "max": 2500.0,
        "stddev": 856.3738,
    },
}
TOTALS = [
    {"key": "West", "rows": 2, "total": 2550.0},
    {"key": "North", "rows": 3, "total": 1312.5},
    {"key": "East", "rows": 2, "total": 1267.5},
    {"key": "South", "rows": 3, "total": 150.0},
]
TASKS = ["extract", "clean", "analyse", "statistics", "chart", "analyse_join", "narrate", "report"]


@pytest.fixture(scope="module")
def shared_stack(module_topics: Settings) -> Iterator[ExampleStack]:
    """The example's stack, always against the scripted fake LLM, shared by the module's tests:
    each starts runs of its own ids, writing to a directory of its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("OPENAI_BASE_URL", raising=False)
        with shared_example_stack(EXAMPLE, module_topics) as running:
            yield running


def run_input(output_dir: Path, **changes: Json) -> dict[str, Json]:
    """The example's input writing to ``output_dir``, with ``changes``."""
    return {**EXAMPLE.input, "outputDir": str(output_dir), **changes}


def finish(run: Run) -> WorkflowState:
    """Wait for ``run`` to end."""
    return run.client.wait(run.workflow_id, timeout=WAIT_S)


def ref_names(history: list[Event]) -> dict[str, str]:
    """Task id to reference name, from the TaskScheduled events."""
    return {e.task_id: e.ref_name for e in history if isinstance(e, TaskScheduled)}


def completed(history: list[Event]) -> list[str]:
    """The reference names of the completed tasks, in the order they completed."""
    refs = ref_names(history)
    return [refs[e.task_id] for e in history if isinstance(e, TaskCompleted)]


def assert_each_task_ran_once(history: list[Event]) -> None:
    """Every task was scheduled and completed exactly once; the fork's arms after clean."""
    scheduled = Counter(e.ref_name for e in history if isinstance(e, TaskScheduled))
    assert scheduled == Counter(TASKS), scheduled
    order = completed(history)
    assert sorted(order) == sorted(TASKS), order
    assert order[:2] == ["extract", "clean"]
    assert order[-2:] == ["narrate", "report"]
    assert order.index("analyse_join") > max(order.index("statistics"), order.index("chart"))
    assert not [e for e in history if isinstance(e, TaskFailed)]
    assert sum(isinstance(e, WorkflowCompleted) for e in history) == 1


def without_paths(output: Json) -> Json:
    """A workflow output with its file paths left out."""
    chart = {key: value for key, value in output["chart"].items() if key != "path"}
    return {**output, "chart": chart, "reportPath": None}


def test_sample_csv_gives_exact_statistics_a_png_chart_and_the_scripted_report(
    stack: ExampleStack, tmp_path: Path
) -> None:
    """The sample CSV completes with known stats and drops; the PNG and report.md are written."""
    assert stack.llm is not None
    asked = len(stack.llm.requests)
    run = stack.start(input=run_input(tmp_path / "out"))
    state = run.client.wait(run.workflow_id, timeout=WAIT_S)

    assert state.status == "COMPLETED", state.reason
    output = state.output
    assert (output["cleanRows"], output["dropped"], output["stats"]) == (10, DROPPED, STATS)
    assert output["groups"] == {"by": "region", "measure": "revenue", "totals": TOTALS}
    assert output["headline"] == HEADLINE

    chart = Path(output["chart"]["path"])
    assert chart == (tmp_path / "out" / "chart.png").resolve()
    png = chart.read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert (output["chart"]["bytes"], output["chart"]["width"], output["chart"]["height"]) == (
        len(png),
        800,
        450,
    )
    report = Path(output["reportPath"])
    assert report == chart.with_name("report.md")
    text = report.read_text()
    assert text.startswith(f"# {HEADLINE}\n")
    assert "2 blank, 1 malformed, 2 unparsable, 2 duplicate" in text
    assert "| revenue | 10 | 528 | 49 | 17.5 | 2,500 | 856.3738 |" in text
    assert "| West | 2 | 2,550 |" in text
    assert "![Total revenue by region](chart.png)" in text

    assert_each_task_ran_once(run.client.history(run.workflow_id))
    chats = [r for r in stack.llm.requests[asked:] if r.path == "/v1/chat/completions"]
    assert len(chats) == 1
    prompt = chats[0].body["messages"][-1]["content"]
    assert "- West: 2,550 (2 rows)" in prompt
    assert chats[0].body["response_format"]["type"] == "json_schema"


def test_a_processor_killed_after_clean_resumes_to_the_same_output(
    stack: ExampleStack, tmp_path: Path
) -> None:
    """SIGKILL of the processor once clean completed; a new one finishes the run identically."""
    baseline = finish(stack.start(input=run_input(tmp_path / "baseline")))
    assert baseline.status == "COMPLETED", baseline.reason

    run = stack.start(input=run_input(tmp_path / "resumed"))
    first = stack.processor
    seen: list[Event] = []
    killed_after: list[int] = []

    def kill_after_clean(event: Event) -> None:
        seen.append(event)
        if not killed_after and "clean" in completed(seen):
            stack.kill_processor()
            killed_after.append(len(seen))
            stack.start_processor()

    state = run.client.wait(run.workflow_id, timeout=WAIT_S, on_event=kill_after_clean)

    assert killed_after, "the processor was never killed"
    assert stack.processor is not first
    assert first is not None
    assert first.returncode is not None
    assert state.status == "COMPLETED", state.reason
    assert not any(isinstance(e, WorkflowCompleted) for e in seen[: killed_after[0]])
    assert without_paths(state.output) == without_paths(baseline.output)
    assert Path(state.output["chart"]["path"]).read_bytes().startswith(PNG_SIGNATURE)
    assert Path(state.output["reportPath"]).read_text().startswith(f"# {HEADLINE}\n")
    assert_each_task_ran_once(run.client.history(run.workflow_id))


BAD_INPUTS: list[tuple[str, dict[str, Json], str, str]] = [
    (
        "unknown-column",
        {"groupBy": "regoin"},
        "clean",
        "csv_clean: sales.csv: unknown column 'regoin' in groupBy; the columns are: "
        "order_id, order_date, region, product, units, unit_price, revenue",
    ),
    ("text-measure", {"measure": "product"}, "clean", "column 'product' in measure is not numeric"),
    (
        "no-valid-rows",
        {"path": None, "csv": "region,revenue\n\nNorth\n,\n"},
        "clean",
        "csv_clean: inline CSV: no valid rows: 3 data rows, dropped 2 blank, 1 malformed",
    ),
    ("path-outside", {"path": "/etc/passwd"}, "extract", "csv_extract refuses path '/etc/passwd'"),
]


def test_bad_input_fails_the_run_with_a_reason_that_names_the_problem(
    stack: ExampleStack, tmp_path: Path
) -> None:
    """An unknown column, a text measure, no valid rows or a refused path fail the run for good."""
    assert stack.llm is not None
    asked = len(stack.llm.requests)
    runs = [
        (case, stack.start(input=run_input(tmp_path / case, **changes)), failing, reason)
        for case, changes, failing, reason in BAD_INPUTS
    ]
    for case, run, failing, reason in runs:
        state = finish(run)
        assert state.status == "FAILED", case
        assert reason in (state.reason or ""), (case, state.reason)
        history = run.client.history(run.workflow_id)
        refs = ref_names(history)
        failures = [e for e in history if isinstance(e, TaskFailed)]
        assert [(refs[e.task_id], e.terminal, e.error_type) for e in failures] == [
            (failing, True, "TerminalError")
        ], case
        assert reason in failures[0].reason, case
        assert "statistics" not in refs.values(), case
        assert not (tmp_path / case).exists(), case
    assert not stack.llm.requests[asked:]
