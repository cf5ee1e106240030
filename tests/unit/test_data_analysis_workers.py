"""The data-analysis example's cleaning, statistics, report text, chart and input checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.data_analysis import SAMPLE_CSV, report, tables
from examples.data_analysis.chart import PNG_SIGNATURE, png_size, render_bar_chart
from examples.data_analysis.workers import (
    DIRS_ENV,
    MAX_CSV_BYTES,
    csv_clean,
    csv_extract,
    csv_statistics,
)
from orchestrator.errors import TerminalError
from tests.integration.test_example_data_analysis import STATS as SAMPLE_STATS

HEADER = "Name,Region,Units,Price\n"


def cleaned(text: str) -> tables.CleanTable:
    """``text`` parsed and cleaned."""
    return tables.clean(tables.parse_csv(text))


def test_parse_csv_takes_the_first_non_blank_record_as_header_and_keeps_line_numbers() -> None:
    """Leading blank lines and a byte-order mark are skipped; records remember their line."""
    raw = tables.parse_csv('\ufeff\n\na,b\n1,"x\ny"\n\n3,4\n')
    assert raw.header == ("a", "b")
    assert raw.records == (
        tables.Record(5, ("1", "x\ny")),
        tables.Record(6, ()),
        tables.Record(7, ("3", "4")),
    )


@pytest.mark.parametrize("text", ["", "\n\n", " , ,\n"])
def test_parse_csv_without_a_header_fails(text: str) -> None:
    """Text with no non-blank record has no header to name the columns."""
    with pytest.raises(tables.TableError, match="no header"):
        tables.parse_csv(text)


def test_headers_are_snake_cased_and_made_unique() -> None:
    """Case, spaces and punctuation collapse to snake_case; blanks and repeats get names."""
    names = tables.normalise_headers([" Unit Price ", "REGION", "", "Region", "% Share (EU)"])
    assert names == ("unit_price", "region", "column_3", "region_2", "share_eu")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", 12),
        (" -7 ", -7),
        ("2.50", 2.5),
        ("1,250.00", 1250.0),
        ("$1,250", 1250),
        ("€ 3.5", 3.5),
        ("1e3", 1000.0),
        (".5", 0.5),
    ],
)
def test_parse_number_reads_common_spellings(text: str, number: float) -> None:
    """Thousands commas, a currency sign, blanks around and exponents parse."""
    value = tables.parse_number(text)
    assert value == number
    assert type(value) is type(number)


@pytest.mark.parametrize("text", ["", "n/a", "twelve", "1,25", "12 34", "1e999", "--1", "$"])
def test_parse_number_refuses_what_is_not_a_number(text: str) -> None:
    """Words, misplaced commas, infinity and empty cells are not numbers."""
    assert tables.parse_number(text) is None


def test_clean_drops_the_sample_csvs_messy_rows_with_their_reasons() -> None:
    """The sample loses 2 blank, 1 malformed, 2 unparsable and 2 duplicate rows; 10 stay."""
    table = cleaned(SAMPLE_CSV.read_text())
    assert table.dropped_counts() == {"blank": 2, "malformed": 1, "unparsable": 2, "duplicate": 2}
    assert [(d.line, d.reason, d.detail) for d in table.dropped] == [
        (5, "blank", "no values"),
        (7, "unparsable", "units='n/a'"),
        (9, "duplicate", "same as line 3"),
        (11, "blank", "no values"),
        (13, "malformed", "3 fields, 7 expected"),
        (15, "unparsable", "units='twelve'"),
        (16, "duplicate", "same as line 12"),
    ]
    assert [(c.name, c.header, c.type) for c in table.columns] == [
        ("order_id", "Order ID", "text"),
        ("order_date", "Order Date", "text"),
        ("region", "REGION", "text"),
        ("product", "Product", "text"),
        ("units", "Units", "integer"),
        ("unit_price", "Unit Price", "number"),
        ("revenue", "Revenue", "number"),
    ]
    assert len(table.rows) == 10
    assert table.rows[3] == {
        "order_id": "SO-1004",
        "order_date": "2026-01-07",
        "region": "West",
        "product": "Gizmo",
        "units": 2,
        "unit_price": 1250.0,
        "revenue": 2500.0,
    }


def test_clean_normalises_text_before_it_looks_for_duplicates() -> None:
    """Blanks around and inside text and ``2.0`` against ``2`` do not make rows differ."""
    table = cleaned(HEADER + "Ann,North,2,1.5\n  Ann , North ,2,1.50\nBo  b,South,3,2\n")
    assert table.rows == (
        {"name": "Ann", "region": "North", "units": 2, "price": 1.5},
        {"name": "Bo b", "region": "South", "units": 3, "price": 2.0},
    )
    assert [(d.line, d.reason) for d in table.dropped] == [(3, "duplicate")]


def test_clean_accepts_empty_trailing_fields_and_drops_extra_values() -> None:
    """A trailing empty field is harmless; a value past the header's width is malformed."""
    table = cleaned(HEADER + "Ann,North,2,1.5,\nBob,South,3,2,oops\n")
    assert [row["name"] for row in table.rows] == ["Ann"]
    assert [(d.reason, d.detail) for d in table.dropped] == [("malformed", "5 fields, 4 expected")]


def test_a_column_is_numeric_only_when_most_of_its_cells_parse() -> None:
    """One number among words leaves a column text; one word among numbers drops its row."""
    table = cleaned(HEADER + "7,North,2,1\nAnn,South,x,2\nBob,East,4,3\n")
    types = {c.name: c.type for c in table.columns}
    assert types == {"name": "text", "region": "text", "units": "integer", "price": "integer"}
    assert [row["name"] for row in table.rows] == ["7", "Bob"]
    assert table.dropped == (tables.Dropped(3, "unparsable", "units='x'"),)


def test_an_empty_numeric_cell_makes_its_row_unparsable() -> None:
    """A missing number is reported with the column that lacks it."""
    table = cleaned(HEADER + "Ann,North,,1\nBob,East,4,\nCy,West,1,1\n")
    assert [d.detail for d in table.dropped] == ["units=''", "price=''"]


def test_clean_without_valid_rows_fails_and_counts_the_drops() -> None:
    """Every row dropped is an error that says how many went for which reason."""
    text = "name,units,price,tax\n\nA,n/a,1,1\nB\nC,2,x,1\nD,2,1,?\n"
    with pytest.raises(tables.TableError) as failure:
        cleaned(text)
    assert str(failure.value) == (
        "no valid rows: 5 data rows, dropped 1 blank, 1 malformed, 3 unparsable"
    )


def test_clean_of_a_header_alone_fails() -> None:
    """A CSV with a header and no data has no valid rows."""
    with pytest.raises(tables.TableError, match="a header and no data"):
        cleaned(HEADER)


def test_column_statistics_of_the_sample_are_exact() -> None:
    """count, mean, median, min, max and the sample stddev, rounded to four decimals."""
    table = cleaned(SAMPLE_CSV.read_text())
    assert tables.column_statistics(table.columns, table.rows) == SAMPLE_STATS


def test_statistics_of_a_single_row_have_no_spread() -> None:
    """One value is its own mean, median, min and max, with a stddev of zero."""
    table = cleaned(HEADER + "Ann,North,3,0.1\n")
    stats = tables.column_statistics(table.columns, table.rows)
    assert stats["units"] == {"count": 1, "mean": 3, "median": 3, "min": 3, "max": 3, "stddev": 0}


def test_group_totals_are_sorted_by_total_then_key() -> None:
    """Groups come largest total first; equal totals in key order; sums avoid float drift."""
    rows: list[dict[str, str | float]] = [
        {"region": "b", "v": 0.1},
        {"region": "a", "v": 0.3},
        {"region": "b", "v": 0.2},
        {"region": "c", "v": 1.0},
    ]
    assert tables.group_totals(rows, "region", "v") == [
        {"key": "c", "rows": 1, "total": 1.0},
        {"key": "a", "rows": 1, "total": 0.3},
        {"key": "b", "rows": 2, "total": 0.3},
    ]


def test_require_columns_names_the_unknown_column_and_lists_the_known_ones() -> None:
    """An unknown groupBy or measure, or a text measure, is refused with what is there."""
    columns = cleaned(HEADER + "Ann,North,3,1\n").columns
    with pytest.raises(tables.TableError) as unknown:
        tables.require_columns(columns, "regoin", "units")
    assert str(unknown.value) == (
        "unknown column 'regoin' in groupBy; the columns are: name, region, units, price"
    )
    with pytest.raises(tables.TableError, match="unknown column 'cost' in measure"):
        tables.require_columns(columns, "region", "cost")
    with pytest.raises(tables.TableError, match="the numeric columns are: units, price"):
        tables.require_columns(columns, "region", "name")
    tables.require_columns(columns, "region", "price")


def test_the_report_shows_headline_findings_tables_and_chart_link() -> None:
    """report.md holds the headline, each finding, a statistics row, a total and the chart."""
    stats = {
        "revenue": {
            "count": 2,
            "mean": 1.5,
            "median": 1.5,
            "min": 1,
            "max": 2000.0,
            "stddev": 0.7071,
        }
    }
    groups = {
        "by": "region",
        "measure": "revenue",
        "totals": [{"key": "N", "rows": 2, "total": 3.0}],
    }
    text = report.markdown(
        headline="Up",
        findings=["one", "two"],
        source="s.csv",
        rows=2,
        dropped={"blank": 1, "duplicate": 0},
        stats=stats,
        groups=groups,
        chart_file="chart.png",
    )
    assert text.startswith("# Up\n\nSource: `s.csv`: 2 clean rows; dropped rows: 1 blank.\n")
    assert "- one\n- two\n" in text
    assert "| revenue | 2 | 1.5 | 1.5 | 1 | 2,000 | 0.7071 |" in text
    assert "| N | 2 | 3 |" in text
    assert text.endswith("![Total revenue by region](chart.png)\n")
    assert "- revenue: 2, 1.5, 1.5, 1, 2,000, 0.7071" in report.digest(
        "s.csv", 2, {}, stats, groups
    )


def test_the_chart_is_a_png_of_known_size_and_the_same_bytes_each_time() -> None:
    """Rendering twice gives identical PNG bytes of 800 x 450 pixels."""
    first = render_bar_chart(["a", "b"], [1.0, 2.5], title="t", ylabel="y")
    assert first.startswith(PNG_SIGNATURE)
    assert png_size(first) == (800, 450)
    assert render_bar_chart(["a", "b"], [1.0, 2.5], title="t", ylabel="y") == first
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a")


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../../../pyproject.toml", "../fake_llm.json", "~/.bashrc"]
)
def test_extract_refuses_paths_outside_the_allowed_directories(path: str) -> None:
    """Absolute paths elsewhere, ``..`` and ``~`` escapes fail for good, naming the path."""
    with pytest.raises(TerminalError, match=f"refuses path '{path}': it is outside"):
        csv_extract({"path": path})


def test_extract_reads_a_file_in_a_directory_the_environment_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory in DATA_ANALYSIS_DIRS is readable; a missing file there is named."""
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    monkeypatch.setenv(DIRS_ENV, str(tmp_path))
    output = csv_extract({"path": str(tmp_path / "x.csv")})
    assert output == {
        "source": str(tmp_path / "x.csv"),
        "header": ["a", "b"],
        "records": [{"line": 2, "cells": ["1", "2"]}],
    }
    with pytest.raises(TerminalError, match="no CSV file at"):
        csv_extract({"path": str(tmp_path / "y.csv")})


@pytest.mark.parametrize(
    ("task_input", "message"),
    [
        ({}, "exactly one of 'csv'"),
        ({"csv": "a\n1\n", "path": "sales.csv"}, "exactly one of 'csv'"),
        ({"csv": 3}, "must be CSV text"),
        ({"csv": "a\n" + "1\n" * MAX_CSV_BYTES}, "the limit is"),
        ({"csv": ""}, "the CSV is empty"),
    ],
)
def test_extract_refuses_bad_input(task_input: dict[str, object], message: str) -> None:
    """Neither or both sources, a non-string, too many bytes and no header fail for good."""
    with pytest.raises(TerminalError, match=message):
        csv_extract(task_input)


def test_the_tasks_chain_from_inline_csv_to_statistics() -> None:
    """extract, clean and statistics pass their outputs on as the definition wires them."""
    extracted = csv_extract({"csv": HEADER + "Ann,North,2,1.5\nBob,North,4,2\nCy,East,1,3\n"})
    grouping = {"groupBy": "region", "measure": "units"}
    clean_output = csv_clean({**extracted, **grouping})
    assert (clean_output["rowCount"], clean_output["droppedTotal"]) == (3, 0)
    stats = csv_statistics({**clean_output, **grouping})
    assert stats["groups"]["totals"] == [
        {"key": "North", "rows": 2, "total": 6.0},
        {"key": "East", "rows": 1, "total": 1.0},
    ]
    assert stats["digest"].startswith("Dataset inline CSV: 3 clean rows; dropped rows: none.")
    with pytest.raises(TerminalError, match="csv_clean: inline CSV: unknown column 'regoin'"):
        csv_clean({**extracted, "groupBy": "regoin", "measure": "units"})
