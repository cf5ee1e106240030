"""Write the Avro schema of every record type to ``schemas/``, one ``<RecordName>.avsc`` each.

The files are derived from ``engine.records`` through the codec, never edited by hand:

    python -m orchestrator.log.schemas schemas/

A worker in another language reads them to decode task commands and encode results.

When a record's schema changes, the schema it had is kept in ``orchestrator/log/schema_history``
as ``<Name>.<fingerprint>.avsc``, so the codec can still read records written with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastavro import parse_schema

from orchestrator.log.codec import CODEC, schema_fingerprint

__all__ = ["SUFFIX", "expected_files", "main", "render", "write_schemas"]

SUFFIX = ".avsc"
HISTORY = Path(__file__).resolve().parent / "schema_history"
REGENERATE = "python -m orchestrator.log.schemas schemas/"
"""The command that brings ``schemas/`` up to date with the record types."""


def render(schema: Mapping[str, Any]) -> str:
    """One schema as a file's text: indented JSON with sorted keys and a trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """The text of every schema file by file name, as the codec derives it now."""
    return {name + SUFFIX: render(schema) for name, schema in sorted(CODEC.schemas().items())}


def write_schemas(directory: Path) -> list[Path]:
    """Write every record's schema into ``directory`` and delete ``.avsc`` files of no record.

    Returns the paths written, in name order. Other files (``README.md``) are left alone.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = expected_files()
    for stale in sorted(directory.glob("*" + SUFFIX)):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        if path.exists() and path.read_text(encoding="utf-8") != text:
            keep_history(path.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def keep_history(text: str, history: Path = HISTORY) -> Path:
    """Save a schema being replaced into ``history``, named by its record and fingerprint."""
    schema = json.loads(text)
    digest = schema_fingerprint(parse_schema(schema)).hex()
    path = history / f"{schema['name']}.{digest}{SUFFIX}"
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m orchestrator.log.schemas [DIRECTORY]`` (default ``schemas``)."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.log.schemas",
        description="Write one Avro schema file per record type.",
    )
    parser.add_argument("directory", nargs="?", default="schemas", type=Path)
    args = parser.parse_args(argv)
    written = write_schemas(args.directory)
    sys.stdout.write(f"wrote {len(written)} schemas to {args.directory}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
