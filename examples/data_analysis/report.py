"""Text the data-analysis example writes: the statistics as LLM context, and report.md.

Both are pure functions of the task outputs, so the same run always writes the same report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["STAT_NAMES", "digest", "markdown"]

Json = Any
STAT_NAMES = ("count", "mean", "median", "min", "max", "stddev")


def number(value: Json) -> str:
    """A number as a report shows it: thousands commas, at most four decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _counts(dropped: Mapping[str, int]) -> str:
    parts = [f"{count} {reason}" for reason, count in dropped.items() if count]
    return ", ".join(parts) or "none"


def digest(
    source: str,
    rows: int,
    dropped: Mapping[str, int],
    stats: Mapping[str, Mapping[str, Json]],
    groups: Mapping[str, Json],
) -> str:
    """The statistics in a few plain lines, for a model to write the narrative from."""
    lines = [
        f"Dataset {source}: {rows} clean rows; dropped rows: {_counts(dropped)}.",
        "Per numeric column (" + ", ".join(STAT_NAMES) + "):",
    ]
    for column, values in stats.items():
        lines.append(f"- {column}: " + ", ".join(number(values[s]) for s in STAT_NAMES))
    lines.append(f"Total {groups['measure']} by {groups['by']}, largest first:")
    lines.extend(
        f"- {group['key']}: {number(group['total'])} ({group['rows']} rows)"
        for group in groups["totals"]
    )
    return "\n".join(lines)


def markdown(
    *,
    headline: str,
    findings: Sequence[str],
    source: str,
    rows: int,
    dropped: Mapping[str, int],
    stats: Mapping[str, Mapping[str, Json]],
    groups: Mapping[str, Json],
    chart_file: str,
) -> str:
    """report.md: the headline, the findings, the statistics, the group totals and the chart."""
    by, measure = groups["by"], groups["measure"]
    lines = [
        f"# {headline}",
        "",
        f"Source: `{source}`: {rows} clean rows; dropped rows: {_counts(dropped)}.",
        "",
        "## Findings",
        "",
        *(f"- {finding}" for finding in findings),
        "",
        "## Statistics",
        "",
        "| column | " + " | ".join(STAT_NAMES) + " |",
        "|---|" + "---:|" * len(STAT_NAMES),
        *(
            f"| {column} | " + " | ".join(number(values[s]) for s in STAT_NAMES) + " |"
            for column, values in stats.items()
        ),
        "",
        f"## Total {measure} by {by}",
        "",
        f"| {by} | rows | {measure} |",
        "|---|---:|---:|",
        *(f"| {g['key']} | {g['rows']} | {number(g['total'])} |" for g in groups["totals"]),
        "",
        f"![Total {measure} by {by}]({chart_file})",
        "",
    ]
    return "\n".join(lines)
