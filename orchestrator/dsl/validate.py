"""Parse and check a workflow definition, naming the exact problem and where it is."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path as FilePath
from typing import Any

import orjson
from pydantic import ValidationError

from orchestrator.dsl.expressions import expressions
from orchestrator.dsl.model import WorkflowDef
from orchestrator.errors import DefinitionError

Json = Any

#: Expression roots that are not task reference names.
BUILTIN_ROOTS = frozenset({"workflow"})


def _field_path(location: Iterable[int | str]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_definition(document: Json, source: str | None = None) -> WorkflowDef:
    """Validate a JSON document as a WorkflowDef; raise DefinitionError naming the field path."""
    try:
        definition = WorkflowDef.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DefinitionError(first["msg"], source=source, path=_field_path(first["loc"])) from exc
    check_definition(definition, source)
    return definition


def check_definition(definition: WorkflowDef, source: str | None = None) -> None:
    """Check what the schema cannot: unique reference names and known expression roots."""
    seen: dict[str, int] = {}
    for index, task in enumerate(definition.tasks):
        ref = task.taskReferenceName
        if ref in seen:
            raise DefinitionError(
                f"duplicate taskReferenceName {ref!r} (first used at tasks[{seen[ref]}])",
                source=source,
                path=f"tasks[{index}].taskReferenceName",
            )
        seen[ref] = index
    known = BUILTIN_ROOTS | seen.keys()
    for index, task in enumerate(definition.tasks):
        _check_roots(task.inputParameters, known, source, f"tasks[{index}].inputParameters")
    _check_roots(definition.outputParameters, known, source, "outputParameters")


def _check_roots(template: Json, known: Iterable[str], source: str | None, where: str) -> None:
    known = frozenset(known)
    try:
        found = list(expressions(template, where))
    except DefinitionError as exc:
        raise DefinitionError(exc.detail, source=source, path=exc.path) from exc
    for path_text, path in found:
        if path.root not in known:
            raise DefinitionError(
                f"expression ${{{path.text}}} refers to unknown task {path.root!r}",
                source=source,
                path=path_text,
            )


def load_definition_file(path: FilePath) -> list[WorkflowDef]:
    """Read a file holding one definition or a JSON list of them."""
    source = str(path)
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise DefinitionError(f"cannot read file: {exc.strerror}", source=source) from exc
    except orjson.JSONDecodeError as exc:
        raise DefinitionError(f"not valid JSON: {exc}", source=source) from exc
    documents = document if isinstance(document, list) else [document]
    return [
        parse_definition(doc, f"{source}[{i}]" if isinstance(document, list) else source)
        for i, doc in enumerate(documents)
    ]
