"""The data-analysis agent: a CSV in; cleaned rows, statistics, a chart and a report out.

``extract`` reads the CSV (inline, or a file under ``data/`` or a ``DATA_ANALYSIS_DIRS``
directory), ``clean`` drops blank, malformed, unparsable and duplicate rows, then
``statistics`` and ``chart`` run in parallel (FORK_JOIN), an ``LLM_CHAT_COMPLETE`` with a JSON
schema writes the headline and findings from the statistics, and ``report`` writes report.md
beside the chart. Run it with ``python -m examples.data_analysis``.
"""

from __future__ import annotations

from pathlib import Path

from examples.common import Example

__all__ = ["DEFINITION", "EXAMPLE", "FAKE_SCRIPT", "SAMPLE_CSV"]

HERE = Path(__file__).resolve().parent
DEFINITION = HERE / "definitions" / "data_analysis.json"
FAKE_SCRIPT = HERE / "fake_llm.json"
SAMPLE_CSV = HERE / "data" / "sales.csv"

EXAMPLE = Example(
    name="data-analysis",
    workflow="data_analysis",
    definitions=[DEFINITION],
    worker_modules=["examples.data_analysis.workers"],
    input={"path": SAMPLE_CSV.name, "groupBy": "region", "measure": "revenue"},
    fake_script=FAKE_SCRIPT,
    timeout_s=120.0,
)
"""The example as :func:`examples.common.run_example` and the end-to-end tests run it."""
