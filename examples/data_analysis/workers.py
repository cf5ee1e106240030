"""The data-analysis example's worker: its own five tasks plus the LLM tasks, in one process.

Run it with ``orchestrator worker examples.data_analysis.workers``. Contracts (the task
``name`` in the definition is the task type):

- ``csv_extract``
    in:  {"csv": CSV text} or {"path": a file under the example's data/ directory or a
          directory listed in ``DATA_ANALYSIS_DIRS`` (``os.pathsep``-separated); relative paths
          are taken from data/}
    out: {"source": str, "header": [str], "records": [{"line": int, "cells": [str]}]}
- ``csv_clean``
    in:  extract's output and {"groupBy": column, "measure": numeric column}
    out: {"source", "columns": [{"name", "header", "type"}], "rows": [{column: value}],
          "rowCount": int, "dropped": {"blank", "malformed", "unparsable", "duplicate"},
          "droppedTotal": int, "droppedRows": [{"line", "reason", "detail"}]}
- ``csv_statistics``
    in:  {"source", "columns", "rows", "dropped", "groupBy", "measure"}
    out: {"stats": {column: {"count", "mean", "median", "min", "max", "stddev"}},
          "groups": {"by", "measure", "totals": [{"key", "rows", "total"}]}, "digest": str}
- ``chart_render``
    in:  {"columns", "rows", "groupBy", "measure", "outputDir"?}
    out: {"path": str, "bytes": int, "width": int, "height": int}
- ``report_write``
    in:  {"headline", "findings", "source", "rowCount", "dropped", "stats", "groups",
          "chartPath"}
    out: {"path": str (report.md beside the chart), "bytes": int}

Files go to ``outputDir`` or, without one, to ``<ORCH_STATE_DIR>/data-analysis/<workflow id>``.
They are written to a temporary file and renamed, so a redelivered task rewrites whole files.
Bad data, an unknown column and a refused path fail the task for good (TerminalError).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from examples.data_analysis import report, tables
from examples.data_analysis.chart import png_size, render_bar_chart
from orchestrator.config import Settings
from orchestrator.worker import TaskContext, TerminalError
from workers.llm import LlmWorker

__all__ = ["DATA_DIR", "DIRS_ENV", "MAX_CSV_BYTES", "worker"]

Json = Any
DATA_DIR = Path(__file__).resolve().parent / "data"
DIRS_ENV = "DATA_ANALYSIS_DIRS"
MAX_CSV_BYTES = 200_000
OUTPUT_SUBDIR = "data-analysis"
CHART_FILE = "chart.png"
REPORT_FILE = "report.md"
FILE_MODE = 0o644
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

worker = LlmWorker(name="data_analysis")


@worker.task("csv_extract")
def csv_extract(task_input: Json) -> dict[str, Json]:
    """Read the CSV given inline (``csv``) or by ``path``; its header and records."""
    source, text = _csv_source(task_input)
    with _for_good("csv_extract", source):
        table = tables.parse_csv(text)
    return {
        "source": source,
        "header": list(table.header),
        "records": [{"line": r.line, "cells": list(r.cells)} for r in table.records],
    }


@worker.task("csv_clean")
def csv_clean(task_input: Json) -> dict[str, Json]:
    """Drop blank, malformed, unparsable and duplicate rows; name and type the columns."""
    source = str(task_input.get("source") or "the CSV")
    raw = tables.RawTable(
        header=tuple(_field(task_input, "header", list)),
        records=tuple(
            tables.Record(int(r["line"]), tuple(r["cells"]))
            for r in _field(task_input, "records", list)
        ),
    )
    with _for_good("csv_clean", source):
        table = tables.clean(raw)
        tables.require_columns(table.columns, *_grouping(task_input))
    counts = table.dropped_counts()
    return {
        "source": source,
        "columns": [column.to_json() for column in table.columns],
        "rows": list(table.rows),
        "rowCount": len(table.rows),
        "dropped": counts,
        "droppedTotal": sum(counts.values()),
        "droppedRows": [
            {"line": d.line, "reason": d.reason, "detail": d.detail} for d in table.dropped
        ],
    }


@worker.task("csv_statistics")
def csv_statistics(task_input: Json) -> dict[str, Json]:
    """Describe each numeric column and total ``measure`` by ``groupBy``."""
    source = str(task_input.get("source") or "the CSV")
    columns, rows = _table(task_input, "csv_statistics")
    group_by, measure = _grouping(task_input)
    with _for_good("csv_statistics", source):
        tables.require_columns(columns, group_by, measure)
        stats = tables.column_statistics(columns, rows)
        totals = tables.group_totals(rows, group_by, measure)
    groups = {"by": group_by, "measure": measure, "totals": totals}
    dropped = task_input.get("dropped") or {}
    return {
        "stats": stats,
        "groups": groups,
        "digest": report.digest(source, len(rows), dropped, stats, groups),
    }


@worker.task("chart_render")
def chart_render(task_input: Json, ctx: TaskContext) -> dict[str, Json]:
    """Draw the totals of ``measure`` by ``groupBy`` as a PNG bar chart in the output directory."""
    columns, rows = _table(task_input, "chart_render")
    group_by, measure = _grouping(task_input)
    with _for_good("chart_render", "the chart"):
        tables.require_columns(columns, group_by, measure)
        totals = tables.group_totals(rows, group_by, measure)
    png = render_bar_chart(
        [str(group["key"]) for group in totals],
        [float(group["total"]) for group in totals],
        title=f"Total {measure} by {group_by}",
        ylabel=measure,
    )
    path = _output_dir(task_input, ctx) / CHART_FILE
    _write_atomically(path, png)
    width, height = png_size(png)
    return {"path": str(path), "bytes": len(png), "width": width, "height": height}


@worker.task("report_write")
def report_write(task_input: Json) -> dict[str, Json]:
    """Write report.md (headline, findings, statistics, totals, chart) beside the chart."""
    chart = Path(_field(task_input, "chartPath", str))
    text = report.markdown(
        headline=_field(task_input, "headline", str),
        findings=[str(finding) for finding in _field(task_input, "findings", list)],
        source=str(task_input.get("source") or "the CSV"),
        rows=int(_field(task_input, "rowCount", int)),
        dropped=_field(task_input, "dropped", dict),
        stats=_field(task_input, "stats", dict),
        groups=_field(task_input, "groups", dict),
        chart_file=chart.name,
    )
    path = chart.with_name(REPORT_FILE)
    data = text.encode()
    _write_atomically(path, data)
    return {"path": str(path), "bytes": len(data)}


def _csv_source(task_input: Json) -> tuple[str, str]:
    """A name for the CSV and its text, from ``csv`` or ``path``."""
    inline, raw_path = task_input.get("csv"), task_input.get("path")
    if (inline is None) == (raw_path is None):
        raise TerminalError("csv_extract needs exactly one of 'csv' (CSV text) and 'path'")
    if inline is not None:
        if not isinstance(inline, str):
            raise TerminalError("csv_extract 'csv' must be CSV text")
        _check_size(len(inline.encode()), "the inline CSV")
        return "inline CSV", inline
    if not isinstance(raw_path, str) or not raw_path.strip():
        raise TerminalError("csv_extract 'path' must be a non-empty string")
    return raw_path, _read_allowed(raw_path)


def _read_allowed(raw_path: str) -> str:
    """The text of ``raw_path`` if it lies in an allowed directory (symlinks resolved)."""
    given = Path(raw_path).expanduser()
    path = (given if given.is_absolute() else DATA_DIR / given).resolve()
    allowed = _allowed_dirs()
    if not any(path.is_relative_to(directory) for directory in allowed):
        listed = ", ".join(str(directory) for directory in allowed)
        raise TerminalError(
            f"csv_extract refuses path {raw_path!r}: it is outside the allowed directories "
            f"({listed}); add its directory to {DIRS_ENV} to allow it"
        )
    if not path.is_file():
        raise TerminalError(f"csv_extract: no CSV file at {raw_path!r}")
    _check_size(path.stat().st_size, raw_path)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TerminalError(f"csv_extract: {raw_path!r} is not UTF-8 text: {exc}") from exc


def _allowed_dirs() -> tuple[Path, ...]:
    extra = os.environ.get(DIRS_ENV, "")
    return (DATA_DIR, *(Path(part).resolve() for part in extra.split(os.pathsep) if part))


def _check_size(size: int, what: str) -> None:
    if size > MAX_CSV_BYTES:
        raise TerminalError(
            f"csv_extract: {what} has {size} bytes; the limit is {MAX_CSV_BYTES} "
            "(task outputs travel through Kafka)"
        )


def _table(task_input: Json, task: str) -> tuple[list[tables.Column], list[dict[str, Json]]]:
    """The typed columns and the rows of a cleaned table in the task input."""
    with _for_good(task, "its input 'columns'"):
        columns = [tables.Column.from_json(c) for c in _field(task_input, "columns", list)]
    return columns, _field(task_input, "rows", list)


def _grouping(task_input: Json) -> tuple[str, str]:
    """The ``groupBy`` and ``measure`` column names of the task input."""
    return _field(task_input, "groupBy", str), _field(task_input, "measure", str)


def _field(task_input: Json, key: str, kind: type) -> Any:
    value = task_input.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TerminalError(f"task input {key!r} must be a {kind.__name__}, got {value!r}")
    return value


@contextmanager
def _for_good(task: str, subject: str) -> Iterator[None]:
    """Turn a :class:`tables.TableError` into a TerminalError naming the task and the data."""
    try:
        yield
    except tables.TableError as exc:
        raise TerminalError(f"{task}: {subject}: {exc}") from exc


def _output_dir(task_input: Json, ctx: TaskContext) -> Path:
    """``outputDir``, or a directory of this workflow under the worker's state directory."""
    given = task_input.get("outputDir")
    if given:
        return Path(str(given)).expanduser().resolve()
    safe_id = _UNSAFE.sub("_", ctx.workflow_id).lstrip(".") or "run"
    return (_state_dir() / OUTPUT_SUBDIR / safe_id).resolve()


def _state_dir() -> Path:
    """The state directory the environment names (``ORCH_STATE_DIR``), as the worker CLI's."""
    from_environment: dict[str, Any] = {}
    return Settings(**from_environment).state_dir


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(data)
            os.fchmod(output.fileno(), FILE_MODE)  # mkstemp creates files only the owner reads
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
