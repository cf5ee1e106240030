"""Conductor definitions parse, invalid ones are named precisely, and expressions resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator.dsl import WorkflowDef, load_definition_file, parse_definition, resolve
from orchestrator.errors import DefinitionError

SOURCE = "defs/order.json"


def task(ref: str, name: str = "work", **fields: Any) -> dict[str, Any]:
    """A SIMPLE task document with reference name ``ref``."""
    return {"name": name, "taskReferenceName": ref, **fields}


def workflow(*tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A workflow document named ``order`` holding ``tasks``."""
    return {"name": "order", "version": 1, "tasks": list(tasks), **fields}


def invalid(document: Any) -> DefinitionError:
    """The DefinitionError that parsing ``document`` from SOURCE raises."""
    with pytest.raises(DefinitionError) as caught:
        parse_definition(document, SOURCE)
    return caught.value


# Parsing ---------------------------------------------------------------------------------------


CONDUCTOR_DOCUMENT = {
    "name": "order_fulfilment",
    "description": "charge, then ship",
    "version": 3,
    "schemaVersion": 2,
    "ownerEmail": "ops@example.com",
    "inputParameters": ["orderId", "amount"],
    "tasks": [
        {
            "name": "charge_card",
            "taskReferenceName": "charge",
            "type": "SIMPLE",
            "inputParameters": {"amount": "${workflow.input.amount}"},
        },
        {
            "name": "ship",
            "taskReferenceName": "ship",
            "inputParameters": {"receipt": "${charge.output.receipt}"},
            "retryCount": 3,
        },
    ],
    "outputParameters": {"tracking": "${ship.output.tracking}"},
    "timeoutPolicy": "ALERT_ONLY",
    "timeoutSeconds": 0,
}


def test_parse_conductor_definition() -> None:
    """A Conductor SIMPLE-task definition parses with its fields, tasks and defaults."""
    definition = parse_definition(CONDUCTOR_DOCUMENT, SOURCE)
    assert isinstance(definition, WorkflowDef)
    assert definition.key == "order_fulfilment:3"
    assert [t.taskReferenceName for t in definition.tasks] == ["charge", "ship"]
    assert [t.type for t in definition.tasks] == ["SIMPLE", "SIMPLE"]
    assert definition.tasks[0].inputParameters == {"amount": "${workflow.input.amount}"}
    assert definition.outputParameters == {"tracking": "${ship.output.tracking}"}
    assert definition.inputParameters == ["orderId", "amount"]


def test_parse_defaults() -> None:
    """Version defaults to 1, task type to SIMPLE, parameters to empty."""
    definition = parse_definition({"name": "w", "tasks": [task("a")]})
    assert definition.version == 1
    assert definition.tasks[0].type == "SIMPLE"
    assert definition.tasks[0].inputParameters == {}
    assert definition.outputParameters == {}


def test_unknown_conductor_fields_round_trip() -> None:
    """Fields this engine does not use yet survive to_json, so the snapshot keeps them."""
    data = parse_definition(CONDUCTOR_DOCUMENT).to_json()
    assert data["timeoutPolicy"] == "ALERT_ONLY"
    assert data["tasks"][1]["retryCount"] == 3
    assert parse_definition(data) == parse_definition(CONDUCTOR_DOCUMENT)


def test_null_input_parameters_survive_to_json() -> None:
    """A literal null inputParameter or outputParameter stays in the snapshot as a key."""
    document = workflow(task("a", inputParameters={"x": None}), outputParameters={"o": None})
    data = parse_definition(document).to_json()
    assert data["tasks"][0]["inputParameters"] == {"x": None}
    assert data["outputParameters"] == {"o": None}


def test_forward_reference_is_allowed() -> None:
    """An expression may name a task defined later; it resolves to None until that task runs."""
    parse_definition(workflow(task("a", inputParameters={"x": "${b.output.y}"}), task("b")))


# Validation errors name the source and the field path --------------------------------------------


def test_duplicate_reference_name() -> None:
    """A repeated taskReferenceName is named at its second use, citing the first."""
    error = invalid(workflow(task("a"), task("b"), task("a")))
    assert error.source == SOURCE
    assert error.path == "tasks[2].taskReferenceName"
    assert "duplicate taskReferenceName 'a'" in str(error)
    assert "tasks[0]" in str(error)
    assert str(error).startswith(f"{SOURCE}: tasks[2].taskReferenceName: ")


def test_unknown_task_in_expression() -> None:
    """An expression rooted at no task reference name is named with its parameter path."""
    error = invalid(
        workflow(task("a"), task("b", inputParameters={"x": {"y": ["${nope.output}"]}}))
    )
    assert error.source == SOURCE
    assert error.path == "tasks[1].inputParameters.x.y[0]"
    assert "unknown task 'nope'" in str(error)


def test_unknown_task_in_output_parameters() -> None:
    """outputParameters are checked too, with their own path."""
    error = invalid(workflow(task("a"), outputParameters={"r": "${ghost.output.r}"}))
    assert error.path == "outputParameters.r"
    assert "unknown task 'ghost'" in str(error)


def test_unsupported_task_type() -> None:
    """An unknown task type is rejected at tasks[i].type, listing what is supported."""
    error = invalid(workflow(task("a"), task("b", type="BUSINESS_RULE")))
    assert error.source == SOURCE
    assert error.path == "tasks[1].type"
    assert "'BUSINESS_RULE' is not supported" in str(error)
    assert "SIMPLE" in str(error)


def test_missing_workflow_name() -> None:
    """A definition without a name is rejected at the path 'name'."""
    document = workflow(task("a"))
    del document["name"]
    error = invalid(document)
    assert error.source == SOURCE
    assert error.path == "name"
    assert "required" in str(error).lower()


def test_missing_task_reference_name() -> None:
    """A task without taskReferenceName is rejected at tasks[i].taskReferenceName."""
    error = invalid(workflow(task("a"), {"name": "work"}))
    assert error.path == "tasks[1].taskReferenceName"


def test_task_name_that_cannot_be_a_topic() -> None:
    """A task name that cannot become tasks.<name> is rejected at tasks[i].name."""
    error = invalid(workflow(task("a", name="has space")))
    assert error.path == "tasks[0].name"
    assert "topic" in str(error)


def test_empty_task_list() -> None:
    """A workflow needs at least one task."""
    error = invalid(workflow())
    assert error.path == "tasks"


@pytest.mark.parametrize(
    "expression",
    ["${workflow.input.a[}", "${workflow.input.a.}", "${workflow.input.a b}", "${workflow..}"],
)
def test_bad_expression_syntax(expression: str) -> None:
    """An expression that parses neither as a path nor as JSONPath is named at its field."""
    error = invalid(workflow(task("a", inputParameters={"list": ["ok", expression]})))
    assert error.source == SOURCE
    assert error.path == "tasks[0].inputParameters.list[1]"
    assert f"cannot parse expression {expression}" in str(error)


def test_invalid_json_file(tmp_path: Path) -> None:
    """A file that is not JSON is named, with where the JSON breaks."""
    path = tmp_path / "broken.json"
    path.write_text('{"name": "w",\n  "tasks": [}', encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(path)
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}: not valid JSON")
    assert "line 2" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    """A file that cannot be read is named."""
    path = tmp_path / "absent.json"
    with pytest.raises(DefinitionError, match="cannot read file") as caught:
        load_definition_file(path)
    assert caught.value.source == str(path)


def test_file_with_one_definition(tmp_path: Path) -> None:
    """A file holding one definition loads as a list of one."""
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps(CONDUCTOR_DOCUMENT))
    assert [d.name for d in load_definition_file(path)] == ["order_fulfilment"]


def test_file_with_a_list_of_definitions(tmp_path: Path) -> None:
    """A file holding a JSON list loads every definition in order."""
    path = tmp_path / "many.json"
    path.write_bytes(orjson.dumps([workflow(task("a")), {**workflow(task("b")), "name": "other"}]))
    assert [d.name for d in load_definition_file(path)] == ["order", "other"]


def test_error_in_a_list_file_names_the_list_index(tmp_path: Path) -> None:
    """An error in the second definition of a list file names file[1] and the field path."""
    path = tmp_path / "many.json"
    path.write_bytes(orjson.dumps([workflow(task("a")), workflow(task("b"), task("b"))]))
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(path)
    assert caught.value.source == f"{path}[1]"
    assert caught.value.path == "tasks[1].taskReferenceName"
    assert str(caught.value).startswith(f"{path}[1]: tasks[1].taskReferenceName: ")


def test_error_in_a_file_names_the_file(tmp_path: Path) -> None:
    """An invalid single definition in a file names the file and the field path."""
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps(workflow(task("a", type="BUSINESS_RULE"))))
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(path)
    assert caught.value.source == str(path)
    assert caught.value.path == "tasks[0].type"


# Expression resolution -------------------------------------------------------------------------

CONTEXT: dict[str, Any] = {
    "workflow": {"input": {"n": 7, "name": "Ada", "flag": False, "tags": ["x", "y"], "nil": None}},
    "fetch": {
        "output": {
            "items": [{"id": "a", "price": 1.5}, {"id": "b", "price": 2}],
            "meta": {"deep": {"er": {"value": [10, [20, 30]]}}},
            "dashed-key": "ok",
        }
    },
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${workflow.input.n}", 7),
        ("${workflow.input.flag}", False),
        ("${workflow.input.tags}", ["x", "y"]),
        ("${workflow.input.nil}", None),
        ("${fetch.output.items}", CONTEXT["fetch"]["output"]["items"]),
        ("${workflow.input}", CONTEXT["workflow"]["input"]),
        ("  ${ workflow.input.n }", "  7"),
    ],
)
def test_whole_string_expression_keeps_its_type(template: str, expected: Any) -> None:
    """A string that is exactly one expression becomes the value itself, of any JSON type."""
    assert resolve(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello ${workflow.input.name}!", "Hello Ada!"),
        ("n=${workflow.input.n}, flag=${workflow.input.flag}", "n=7, flag=false"),
        ("tags=${workflow.input.tags}", 'tags=["x","y"]'),
        ("${workflow.input.name}${workflow.input.name}", "AdaAda"),
        ("missing=${workflow.input.nope}", "missing=null"),
        ("no expression at all", "no expression at all"),
    ],
)
def test_embedded_expression_is_interpolated_as_text(template: str, expected: str) -> None:
    """An expression inside a longer string becomes its value's text (JSON for non-strings)."""
    assert resolve(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${fetch.output.items[1].id}", "b"),
        ("${fetch.output.items[0].price}", 1.5),
        ("${fetch.output.meta.deep.er.value[1][0]}", 20),
        ("${fetch.output.dashed-key}", "ok"),
    ],
)
def test_nested_paths_and_array_indexes(template: str, expected: Any) -> None:
    """Dotted paths walk objects and [i] indexes walk arrays, to any depth."""
    assert resolve(template, CONTEXT) == expected


@pytest.mark.parametrize(
    "template",
    [
        "${workflow.input.absent}",
        "${workflow.input.absent.deeper}",
        "${fetch.output.items[9].id}",
        "${workflow.input.n.not_an_object}",
        "${workflow.input.name[0]}",
        "${unknown_task.output.x}",
    ],
)
def test_missing_path_resolves_to_none(template: str) -> None:
    """A path that names nothing resolves to None instead of raising."""
    assert resolve(template, CONTEXT) is None


def test_jsonpath_wildcard_fallback() -> None:
    """A path simple walking cannot express (wildcards, recursive descent) runs as JSONPath."""
    assert resolve("${fetch.output.items[*].id}", CONTEXT) == ["a", "b"]
    assert resolve("${fetch.output..id}", CONTEXT) == ["a", "b"]
    assert resolve("ids: ${fetch.output.items[*].id}", CONTEXT) == 'ids: ["a","b"]'


def test_nested_templates_resolve_everywhere() -> None:
    """Expressions inside nested objects and arrays resolve; other values pass through."""
    template = {
        "who": "${workflow.input.name}",
        "list": ["${workflow.input.n}", {"id": "${fetch.output.items[0].id}"}, 3, None, True],
        "literal": {"k": 1.25},
    }
    assert resolve(template, CONTEXT) == {
        "who": "Ada",
        "list": [7, {"id": "a"}, 3, None, True],
        "literal": {"k": 1.25},
    }


def test_resolve_leaves_the_template_unchanged() -> None:
    """Resolving builds new containers; the definition's template is never modified."""
    template = {"a": ["${workflow.input.n}"], "b": {"c": "${workflow.input.name}"}}
    before = orjson.dumps(template)
    resolve(template, CONTEXT)
    assert orjson.dumps(template) == before


def test_interpolated_values_are_not_re_expanded() -> None:
    """A value containing '${...}' text appears verbatim; it is never evaluated again."""
    context = {"workflow": {"input": {"a": "${workflow.input.b}", "b": "B"}}}
    assert resolve("${workflow.input.a} ${workflow.input.b}", context) == "${workflow.input.b} B"


def test_wildcard_with_one_match_is_still_a_list() -> None:
    """An indefinite path resolves to a list even when exactly one element matches."""
    context = {"t": {"output": {"items": [{"id": "only"}]}}}
    assert resolve("${t.output.items[*].id}", context) == ["only"]


def test_wildcard_with_no_match_is_an_empty_list() -> None:
    """An indefinite JSONPath that matches nothing resolves to [], as Conductor's JsonPath does."""
    context = {"fetch": {"output": {"items": [{"id": 1}]}}}
    assert resolve("${fetch.output.items[*].missing}", context) == []
