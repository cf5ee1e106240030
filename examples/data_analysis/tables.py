"""Pure table work for the data-analysis example: parse CSV text, clean it, describe it.

Nothing here reads a file, the clock or the environment. A problem with the data raises
:class:`TableError`, which the worker tasks turn into a task that fails for good.

Cleaning drops, in this order of checks, a row that is ``blank`` (every cell empty), one that
is ``malformed`` (fewer fields than the header, or extra fields that are not empty), one whose
numeric cells do not parse (``unparsable``) and one equal to an earlier kept row after
normalisation (``duplicate``). A column is numeric when more than half of its non-empty cells
parse as numbers (``"1,250.00"``, ``"$3.5"`` and ``" 12 "`` do; ``"n/a"`` does not).
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DROP_REASONS",
    "CleanTable",
    "Column",
    "Dropped",
    "RawTable",
    "Record",
    "TableError",
    "clean",
    "column_statistics",
    "group_totals",
    "normalise_headers",
    "parse_csv",
    "parse_number",
    "require_columns",
]

Json = Any
Cell = str | int | float
Row = Mapping[str, Cell]
ColumnType = Literal["integer", "number", "text"]
DROP_REASONS = ("blank", "malformed", "unparsable", "duplicate")
DECIMALS = 4

_CURRENCY = "$€£"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_NOT_NAME = re.compile(r"[^0-9a-z]+")


class TableError(ValueError):
    """The data cannot be analysed: no header, no valid row, an unknown column."""


@dataclass(frozen=True, slots=True)
class Record:
    """One data record of a CSV and the line it ends on."""

    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RawTable:
    """A CSV as read: its header and its records, blank ones included."""

    header: tuple[str, ...]
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """A cleaned column: its normalised name, its original header and its type."""

    name: str
    header: str
    type: ColumnType

    @property
    def numeric(self) -> bool:
        """Whether the column holds numbers."""
        return self.type != "text"

    def to_json(self) -> dict[str, str]:
        """The column as a task output carries it."""
        return {"name": self.name, "header": self.header, "type": self.type}

    @classmethod
    def from_json(cls, data: Json) -> Column:
        """The column :meth:`to_json` described."""
        try:
            name, header, kind = data["name"], data["header"], data["type"]
        except (KeyError, TypeError) as exc:
            raise TableError(f"a column needs a name, a header and a type, not {data!r}") from exc
        if kind not in ("integer", "number", "text"):
            raise TableError(f"column {name!r} has an unknown type {kind!r}")
        return cls(name=str(name), header=str(header), type=kind)


@dataclass(frozen=True, slots=True)
class Dropped:
    """A record that cleaning dropped, and why."""

    line: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class CleanTable:
    """The rows that survived cleaning, typed, and the records that did not."""

    columns: tuple[Column, ...]
    rows: tuple[dict[str, Cell], ...]
    dropped: tuple[Dropped, ...]

    def dropped_counts(self) -> dict[str, int]:
        """How many records were dropped for each reason (every reason, zero included)."""
        return {reason: sum(d.reason == reason for d in self.dropped) for reason in DROP_REASONS}


def parse_csv(text: str) -> RawTable:
    """The header (the first non-blank record) and the records of CSV ``text``."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header: tuple[str, ...] | None = None
    records: list[Record] = []
    try:
        for cells in reader:
            if header is None:
                if any(cell.strip() for cell in cells):
                    header = tuple(cells)
                continue
            records.append(Record(reader.line_num, tuple(cells)))
    except csv.Error as exc:
        raise TableError(f"the CSV does not parse at line {reader.line_num}: {exc}") from exc
    if header is None:
        raise TableError("the CSV is empty: no header row")
    return RawTable(header, tuple(records))


def normalise_headers(header: Sequence[str]) -> tuple[str, ...]:
    """Snake-case names for ``header``: ``" Unit Price"`` is ``unit_price``; repeats get ``_2``."""
    names: list[str] = []
    for position, title in enumerate(header, start=1):
        base = _NOT_NAME.sub("_", title.strip().lower()).strip("_") or f"column_{position}"
        name, suffix = base, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return tuple(names)


def parse_number(text: str) -> int | float | None:
    """The number ``text`` writes (thousands commas and a currency sign allowed), else None."""
    value = text.strip()
    if value[:1] in _CURRENCY:
        value = value[1:].strip()
    if _GROUPED.fullmatch(value):
        value = value.replace(",", "")
    if not _NUMBER.fullmatch(value):
        return None
    if "." not in value and "e" not in value.lower():
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def clean(raw: RawTable) -> CleanTable:
    """Drop blank, malformed, unparsable and duplicate records; type the columns and the rows.

    Raises :class:`TableError` when no row is left.
    """
    names = normalise_headers(raw.header)
    width = len(names)
    dropped: list[Dropped] = []
    shaped: list[Record] = []
    for record in raw.records:
        cells = tuple(cell.strip() for cell in record.cells)
        if not any(cells):
            dropped.append(Dropped(record.line, "blank", "no values"))
        elif len(cells) < width or any(cells[width:]):
            detail = f"{len(cells)} fields, {width} expected"
            dropped.append(Dropped(record.line, "malformed", detail))
        else:
            shaped.append(Record(record.line, cells[:width]))
    numeric = [_is_numeric([r.cells[i] for r in shaped]) for i in range(width)]
    rows, lines = _typed_rows(names, numeric, shaped, dropped)
    columns = tuple(
        Column(name, title.strip(), _column_type(name, is_number, rows))
        for name, title, is_number in zip(names, raw.header, numeric, strict=True)
    )
    rows = [_as_types(row, columns) for row in rows]
    kept = _without_duplicates(rows, lines, dropped)
    dropped.sort(key=lambda d: d.line)
    table = CleanTable(columns, tuple(kept), tuple(dropped))
    if not kept:
        counts = ", ".join(f"{n} {reason}" for reason, n in table.dropped_counts().items() if n)
        raise TableError(
            f"no valid rows: {len(raw.records)} data rows, dropped {counts or 'none'}"
            if raw.records
            else "no valid rows: the CSV has a header and no data"
        )
    return table


def _is_numeric(cells: Sequence[str]) -> bool:
    present = [cell for cell in cells if cell]
    parsed = sum(parse_number(cell) is not None for cell in present)
    return parsed > 0 and parsed * 2 > len(present)


def _typed_rows(
    names: Sequence[str], numeric: Sequence[bool], shaped: Sequence[Record], dropped: list[Dropped]
) -> tuple[list[dict[str, Cell]], list[int]]:
    """The shaped records as rows of numbers and normalised text; the rest go to ``dropped``."""
    rows: list[dict[str, Cell]] = []
    lines: list[int] = []
    for record in shaped:
        row: dict[str, Cell] = {}
        bad: list[str] = []
        for name, is_number, cell in zip(names, numeric, record.cells, strict=True):
            if not is_number:
                row[name] = " ".join(cell.split())
            elif (number := parse_number(cell)) is None:
                bad.append(f"{name}={cell!r}")
            else:
                row[name] = number
        if bad:
            dropped.append(Dropped(record.line, "unparsable", ", ".join(bad)))
        else:
            rows.append(row)
            lines.append(record.line)
    return rows, lines


def _column_type(name: str, is_number: bool, rows: Sequence[Row]) -> ColumnType:
    if not is_number:
        return "text"
    return "integer" if all(isinstance(row[name], int) for row in rows) else "number"


def _as_types(row: Row, columns: Sequence[Column]) -> dict[str, Cell]:
    return {c.name: float(row[c.name]) if c.type == "number" else row[c.name] for c in columns}


def _without_duplicates(
    rows: Sequence[dict[str, Cell]], lines: Sequence[int], dropped: list[Dropped]
) -> list[dict[str, Cell]]:
    first_line: dict[tuple[Cell, ...], int] = {}
    kept: list[dict[str, Cell]] = []
    for row, line in zip(rows, lines, strict=True):
        key = tuple(row.values())
        if key in first_line:
            dropped.append(Dropped(line, "duplicate", f"same as line {first_line[key]}"))
        else:
            first_line[key] = line
            kept.append(row)
    return kept


def require_columns(columns: Sequence[Column], group_by: str, measure: str) -> None:
    """Raise :class:`TableError` unless ``group_by`` is a column and ``measure`` a numeric one."""
    by_name = {column.name: column for column in columns}
    listed = ", ".join(by_name)
    for role, name in (("groupBy", group_by), ("measure", measure)):
        if name not in by_name:
            raise TableError(f"unknown column {name!r} in {role}; the columns are: {listed}")
    if not by_name[measure].numeric:
        numeric = ", ".join(c.name for c in columns if c.numeric) or "none"
        raise TableError(
            f"column {measure!r} in measure is not numeric; the numeric columns are: {numeric}"
        )


def column_statistics(
    columns: Sequence[Column], rows: Sequence[Row]
) -> dict[str, dict[str, int | float]]:
    """count, mean, median, min, max and sample stddev of each numeric column, in column order."""
    return {
        column.name: _describe([_number(row[column.name]) for row in rows])
        for column in columns
        if column.numeric
    }


def _describe(values: Sequence[int | float]) -> dict[str, int | float]:
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), DECIMALS),
        "median": round(statistics.median(values), DECIMALS),
        "min": min(values),
        "max": max(values),
        "stddev": round(statistics.stdev(values), DECIMALS) if len(values) > 1 else 0.0,
    }


def group_totals(rows: Sequence[Row], group_by: str, measure: str) -> list[dict[str, Json]]:
    """The total of ``measure`` for each value of ``group_by``, largest total first."""
    groups: dict[str, list[int | float]] = {}
    for row in rows:
        groups.setdefault(str(row[group_by]), []).append(_number(row[measure]))
    totals = [
        {"key": key, "rows": len(values), "total": round(math.fsum(values), DECIMALS)}
        for key, values in groups.items()
    ]
    return sorted(totals, key=lambda group: (-group["total"], group["key"]))


def _number(cell: Cell) -> int | float:
    if isinstance(cell, str):
        raise TableError(f"expected a number, got {cell!r}")
    return cell
