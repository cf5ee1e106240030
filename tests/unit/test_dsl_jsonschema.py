"""The generated JSON Schema of workflow definitions: current, valid, and true to the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from orchestrator.dsl import jsonschema
from tests.conductor_defs.cases import definition_files

REPO = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO / "schemas" / jsonschema.SCHEMA_FILE


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    """A validator of the checked-in schema."""
    return Draft202012Validator(orjson.loads(CHECKED_IN.read_bytes()))


def test_checked_in_schema_is_current() -> None:
    """schemas/workflow-definition.schema.json is what the models generate today."""
    assert CHECKED_IN.read_text(encoding="utf-8") == jsonschema.render(), (
        f"{CHECKED_IN.relative_to(REPO)} is stale; regenerate it with "
        "`python -m orchestrator.dsl.jsonschema schemas/`"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The schema itself passes the 2020-12 meta-schema and names its dialect and id."""
    schema = jsonschema.workflow_definition_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == jsonschema.SCHEMA_ID


@pytest.mark.parametrize("path", definition_files(), ids=lambda p: p.stem)
def test_every_conductor_definition_validates(validator: Draft202012Validator, path: Path) -> None:
    """Each definition in tests/conductor_defs is valid against the schema."""
    errors = [e.message for e in validator.iter_errors(orjson.loads(path.read_bytes()))]
    assert errors == []


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"tasks": [{"name": "a", "taskReferenceName": "a"}]}, "'name' is a required property"),
        ({"name": "w", "tasks": []}, "should be non-empty"),
        ({"name": "w", "tasks": [{"name": "a"}]}, "'taskReferenceName' is a required property"),
        (
            {"name": "w", "tasks": [{"name": "a", "taskReferenceName": "a", "type": "NOPE"}]},
            "'NOPE' is not one of",
        ),
        (
            {"name": "w", "tasks": [{"name": "has space", "taskReferenceName": "a"}]},
            "does not match",
        ),
        (
            {"name": "w", "version": 0, "tasks": [{"name": "a", "taskReferenceName": "a"}]},
            "less than the minimum of 1",
        ),
    ],
)
def test_schema_rejects_what_the_models_reject(
    validator: Draft202012Validator, document: dict[str, Any], problem: str
) -> None:
    """Missing names, empty task lists, unknown task types and illegal task names fail."""
    messages = [error.message for error in validator.iter_errors(document)]
    assert any(problem in message for message in messages), messages


def test_module_entry_point_writes_the_schema(tmp_path: Path) -> None:
    """`python -m orchestrator.dsl.jsonschema DIR` writes the schema file into DIR."""
    assert jsonschema.main([str(tmp_path)]) == 0
    assert (tmp_path / jsonschema.SCHEMA_FILE).read_text(encoding="utf-8") == jsonschema.render()
    assert jsonschema.main([]) == 2
