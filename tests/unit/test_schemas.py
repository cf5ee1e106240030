"""The checked-in ``schemas/`` equal what the codec derives from the record types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.log.codec import CODEC
from orchestrator.log.schemas import REGENERATE, expected_files, main, render, write_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
STALE = f"schemas/ is out of date with orchestrator/engine/records.py: run `{REGENERATE}`"


@pytest.mark.parametrize("file_name", sorted(expected_files()))
def test_checked_in_schema_matches_codec(file_name: str) -> None:
    """Each record's .avsc file holds exactly the schema the codec derives now."""
    path = SCHEMAS / file_name
    assert path.is_file(), f"{file_name} is missing. {STALE}"
    assert path.read_text(encoding="utf-8") == expected_files()[file_name], (
        f"{file_name} differs. {STALE}"
    )


def test_no_schema_file_without_a_record() -> None:
    """Every .avsc file in schemas/ belongs to a record type the codec knows."""
    extra = sorted({p.name for p in SCHEMAS.glob("*.avsc")} - set(expected_files()))
    assert not extra, f"{extra} belong to no record type. {STALE}"


def test_render_is_sorted_pretty_json_with_trailing_newline() -> None:
    """A schema file is indented JSON with sorted keys and ends in one newline."""
    text = render({"name": "X", "type": "record", "fields": []})
    assert text == '{\n  "fields": [],\n  "name": "X",\n  "type": "record"\n}\n'


def test_write_schemas_writes_one_parseable_file_per_record(tmp_path: Path) -> None:
    """write_schemas writes one <RecordName>.avsc per codec record, each parsing to its schema."""
    written = write_schemas(tmp_path / "out")
    assert [p.name for p in written] == sorted(f"{name}.avsc" for name in CODEC.schemas())
    for path in written:
        assert json.loads(path.read_text(encoding="utf-8")) == CODEC.schemas()[path.stem]


def test_write_schemas_removes_stale_schemas_and_keeps_other_files(tmp_path: Path) -> None:
    """Regenerating deletes .avsc files of removed records but leaves README.md alone."""
    (tmp_path / "Gone.avsc").write_text("{}", encoding="utf-8")
    (tmp_path / "README.md").write_text("docs", encoding="utf-8")
    write_schemas(tmp_path)
    assert not (tmp_path / "Gone.avsc").exists()
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "docs"


def test_main_writes_into_the_named_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m orchestrator.log.schemas DIR` writes the files into DIR and says how many."""
    assert main([str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.glob("*.avsc")} == set(expected_files())
    assert f"wrote {len(expected_files())} schemas" in capsys.readouterr().out
