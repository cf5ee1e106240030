"""The JSON Schema (draft 2020-12) of a workflow definition, generated from the pydantic models.

Editors and CI can check Conductor definitions against it before registering them. It holds
what the models hold (fields, types, task types, name patterns); the checks that need the whole
definition (reference names, JOIN placement, scripts, sub-workflows) are
:mod:`orchestrator.dsl.validate`'s. After changing the models, regenerate the checked-in copy
(a unit test fails until you do)::

    python -m orchestrator.dsl.jsonschema schemas/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.dsl import names
from orchestrator.dsl.model import SUPPORTED_TASK_TYPES, WorkflowDef

__all__ = ["SCHEMA_FILE", "SCHEMA_ID", "render", "workflow_definition_schema", "write"]

SCHEMA_FILE = "workflow-definition.schema.json"
SCHEMA_ID = "urn:orchestrator:schema:workflow-definition"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def workflow_definition_schema() -> dict[str, Any]:
    """The schema of a WorkflowDef document, with task types and task names constrained."""
    generated = WorkflowDef.model_json_schema(mode="validation")
    definitions = generated["$defs"]
    task = definitions["WorkflowTask"]["properties"]
    # Field validators do not reach the generated schema; state what they enforce, from the
    # same sources the validators use.
    task["type"]["enum"] = sorted(SUPPORTED_TASK_TYPES)
    task["name"]["pattern"] = names._TASK_TYPE.pattern
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "Workflow definition",
        "description": "A workflow in Netflix Conductor's JSON DSL, as this orchestrator runs it.",
        "$ref": "#/$defs/WorkflowDef",
        "$defs": definitions,
    }


def render() -> str:
    """The schema as the text of the checked-in file."""
    return json.dumps(workflow_definition_schema(), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> Path:
    """Write the schema file into ``directory``; return its path."""
    path = directory / SCHEMA_FILE
    path.write_text(render(), encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    """``python -m orchestrator.dsl.jsonschema DIRECTORY``: write the schema file there."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m orchestrator.dsl.jsonschema DIRECTORY\n")
        return 2
    sys.stdout.write(f"wrote {write(Path(argv[0]))}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
