"""Run the data-analysis example once: ``python -m examples.data_analysis``.

The chart and report.md go to ``$DATA_ANALYSIS_OUTPUT``, by default ``<tmp>/data-analysis``,
so they outlive the run's temporary state directory.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from examples.common import run_example
from examples.data_analysis import EXAMPLE

output = os.environ.get("DATA_ANALYSIS_OUTPUT") or Path(tempfile.gettempdir()) / "data-analysis"
example = dataclasses.replace(EXAMPLE, input={**EXAMPLE.input, "outputDir": str(output)})
raise SystemExit(run_example(example))
