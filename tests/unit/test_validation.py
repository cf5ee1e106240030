"""Registration-time validation: every problem is named with its exact JSON path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.dsl.model import WorkflowDef
from orchestrator.dsl.validate import (
    DefinitionWarning,
    JavaScriptSyntax,
    check_scripts,
    check_sub_workflows,
    parse_definition,
    problems,
    validate_set,
)
from orchestrator.errors import DefinitionError

Json = Any
SOURCE = "defs/flow.json"


def task(ref: str, kind: str = "SIMPLE", **fields: Json) -> dict[str, Json]:
    """A task document of type ``kind`` named after its reference name."""
    return {"name": ref, "taskReferenceName": ref, "type": kind, **fields}


def workflow(*tasks: dict[str, Json], name: str = "flow", **fields: Json) -> dict[str, Json]:
    """A workflow document holding ``tasks``."""
    return {"name": name, "version": 1, "tasks": list(tasks), **fields}


def invalid(document: Json) -> DefinitionError:
    """The DefinitionError parsing ``document`` from SOURCE raises."""
    with pytest.raises(DefinitionError) as caught:
        parse_definition(document, SOURCE)
    return caught.value


def fork(ref: str, *arms: list[dict[str, Json]]) -> dict[str, Json]:
    """A FORK_JOIN task with ``arms``."""
    return task(ref, "FORK_JOIN", forkTasks=list(arms))


def join(ref: str, *on: str) -> dict[str, Json]:
    """A JOIN task waiting for ``on``."""
    return task(ref, "JOIN", joinOn=list(on))


def switch(ref: str, **fields: Json) -> dict[str, Json]:
    """A value-param SWITCH on input ``k`` with one case, unless ``fields`` say otherwise."""
    defaults = {"expression": "k", "decisionCases": {"a": [task(f"{ref}_a")]}}
    return task(ref, "SWITCH", **(defaults | fields))


def sub(ref: str, name: str | None = None, **params: Json) -> dict[str, Json]:
    """A SUB_WORKFLOW task running ``name``."""
    return task(ref, "SUB_WORKFLOW", subWorkflowParam={"name": name, **params})


def definition(name: str, *tasks: dict[str, Json], version: int = 1) -> WorkflowDef:
    """A parsed definition (the default task is a SIMPLE one)."""
    return parse_definition(workflow(*(tasks or [task("work")]), name=name, version=version))


class Registered:
    """Already-registered definitions, by name and version."""

    def __init__(self, *definitions: WorkflowDef) -> None:
        self.definitions = definitions

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The definition, or its latest version when ``version`` is None."""
        found = [d for d in self.definitions if d.name == name]
        if version is not None:
            found = [d for d in found if d.version == version]
        return max(found, key=lambda d: d.version, default=None)


class Rejecting:
    """A syntax check failing the scripts that contain a marker; it records what it saw."""

    def __init__(self, marker: str = "BAD") -> None:
        self.marker = marker
        self.seen: list[str] = []

    def __call__(self, code: str) -> str | None:
        """``unexpected <marker>`` for a script containing the marker, else None."""
        self.seen.append(code)
        return f"unexpected {self.marker}" if self.marker in code else None


# Reference names and expressions ----------------------------------------------------------------


def test_duplicate_reference_in_a_fork_arm_is_named_at_its_path() -> None:
    """A reference name repeated inside a fork arm names that nested path and the first use."""
    error = invalid(
        workflow(
            task("a"),
            task("b"),
            fork("f", [task("c")], [task("a")]),
            join("j", "c"),
        )
    )
    assert error.source == SOURCE
    assert error.path == "tasks[2].forkTasks[1][0].taskReferenceName"
    assert "duplicate taskReferenceName 'a' (first used at tasks[0])" in str(error)


def test_duplicate_reference_between_switch_case_and_loop_body() -> None:
    """References must be unique across cases, defaults and loop bodies alike."""
    error = invalid(
        workflow(
            switch("s", decisionCases={"x": [task("dup")]}),
            task("l", "DO_WHILE", loopCondition="false", loopOver=[task("dup")]),
        )
    )
    assert error.path == "tasks[1].loopOver[0].taskReferenceName"
    assert "first used at tasks[0].decisionCases.x[0]" in str(error)


def test_expression_may_name_a_nested_task() -> None:
    """A task inside a case, an arm or a loop body is a known expression root."""
    parse_definition(
        workflow(
            switch("s", decisionCases={"x": [task("inner")]}),
            task("after", inputParameters={"v": "${inner.output.v}", "w": "${workflow.input.w}"}),
        )
    )


def test_unknown_root_inside_a_loop_body_is_named_at_its_path() -> None:
    """An expression naming no task is reported where it is, however deep."""
    body = [task("step", inputParameters={"x": {"y": ["${ghost.output.z}"]}})]
    error = invalid(workflow(task("l", "DO_WHILE", loopCondition="false", loopOver=body)))
    assert error.path == "tasks[0].loopOver[0].inputParameters.x.y[0]"
    assert "expression ${ghost.output.z} refers to unknown task 'ghost'" in str(error)


def test_unknown_roots_are_allowed_beside_a_dynamic_fork() -> None:
    """A dynamic fork names its tasks at run time, so any root may be one of them."""
    parse_definition(
        workflow(
            task("df", "FORK_JOIN_DYNAMIC", inputParameters={"forkTaskName": "x"}),
            join("j"),
            task("after", inputParameters={"v": "${x_0.output.v}"}),
        )
    )


def test_malformed_expression_inside_a_nested_task() -> None:
    """An expression that does not parse is named at its nested path."""
    arm = [task("c", inputParameters={"bad": "${workflow.input.a[}"})]
    error = invalid(workflow(fork("f", arm), join("j", "c")))
    assert error.path == "tasks[0].forkTasks[0][0].inputParameters.bad"
    assert "cannot parse expression" in str(error)


# FORK and JOIN -----------------------------------------------------------------------------------


def test_join_on_a_task_outside_the_fork_before_it() -> None:
    """joinOn may only name tasks inside the fork right before the JOIN."""
    error = invalid(
        workflow(task("early"), fork("f", [task("a")], [task("b")]), join("j", "a", "early"))
    )
    assert error.path == "tasks[2].joinOn[1]"
    assert "JOIN 'j' joins on 'early', which is not inside FORK_JOIN 'f' before it" in str(error)


def test_join_on_a_task_nested_in_an_arm_is_allowed() -> None:
    """A task inside a switch inside an arm counts as inside the fork."""
    arm = [switch("s", decisionCases={"x": [task("deep")]})]
    parse_definition(workflow(fork("f", arm), join("j", "deep", "s")))


@pytest.mark.parametrize("kind", ["FORK_JOIN", "FORK_JOIN_DYNAMIC"])
def test_fork_without_a_join_after_it(kind: str) -> None:
    """A fork must be followed by a JOIN in the same task list."""
    forked = fork("f", [task("a")]) if kind == "FORK_JOIN" else task("f", kind)
    error = invalid(workflow(task("first"), forked, task("after")))
    assert error.path == "tasks[1]"
    assert f"{kind} 'f' is not followed by a JOIN in the same task list" in str(error)


def test_fork_at_the_end_of_a_case_without_a_join() -> None:
    """The JOIN must be in the fork's own list, not after the switch holding it."""
    case = [fork("f", [task("a")])]
    document = workflow(switch("s", decisionCases={"x": case}), join("j", "a"))
    found = {p.path: p.detail for p in problems(parse_definition_unchecked(document))}
    assert "not followed by a JOIN" in found["tasks[0].decisionCases.x[0]"]
    assert "does not directly follow" in found["tasks[1]"]


def test_join_that_follows_no_fork() -> None:
    """A JOIN must come right after a FORK_JOIN or FORK_JOIN_DYNAMIC."""
    error = invalid(workflow(task("a"), join("j", "a")))
    assert error.path == "tasks[1]"
    assert "JOIN 'j' does not directly follow a FORK_JOIN or FORK_JOIN_DYNAMIC" in str(error)


def test_fork_without_arms() -> None:
    """A FORK_JOIN needs forkTasks."""
    error = invalid(workflow(fork("f"), join("j")))
    assert error.path == "tasks[0].forkTasks"


# SWITCH and DECISION -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["SWITCH", "DECISION"])
def test_switch_without_any_case(kind: str) -> None:
    """A SWITCH or DECISION with neither decisionCases nor defaultCase is rejected."""
    error = invalid(workflow(task("s", kind, expression="k", caseValueParam="k")))
    assert error.path == "tasks[0]"
    assert f"{kind} 's' has no cases" in str(error)


def test_switch_with_only_a_default_case_is_allowed() -> None:
    """A defaultCase alone is a case."""
    parse_definition(workflow(switch("s", decisionCases={}, defaultCase=[task("d")])))


@pytest.mark.parametrize(
    ("fields", "needed"),
    [
        ({}, "the input parameter to switch on"),
        ({"evaluatorType": "value-param"}, "the input parameter to switch on"),
        ({"evaluatorType": "javascript"}, "the script"),
        ({"evaluatorType": "graaljs"}, "the script"),
    ],
)
def test_switch_without_expression(fields: dict[str, Json], needed: str) -> None:
    """A SWITCH needs an expression, whatever its evaluator."""
    error = invalid(workflow(switch("s", expression=None, **fields)))
    assert error.path == "tasks[0].expression"
    assert f"needs an expression ({needed})" in str(error)


def test_switch_with_an_unknown_evaluator() -> None:
    """Only value-param, javascript and graaljs evaluate a SWITCH."""
    error = invalid(workflow(switch("s", evaluatorType="python")))
    assert error.path == "tasks[0].evaluatorType"
    assert "evaluatorType 'python' is not supported" in str(error)


def test_decision_without_case_value_param_or_expression() -> None:
    """A DECISION needs caseValueParam or caseExpression."""
    error = invalid(workflow(task("d", "DECISION", decisionCases={"a": [task("x")]})))
    assert error.path == "tasks[0]"
    assert "DECISION 'd' needs a caseValueParam or a caseExpression" in str(error)


# DO_WHILE ----------------------------------------------------------------------------------------


def test_loop_without_body() -> None:
    """A DO_WHILE needs loopOver tasks."""
    error = invalid(workflow(task("l", "DO_WHILE", loopCondition="false")))
    assert error.path == "tasks[0].loopOver"


def test_loop_without_condition_or_items() -> None:
    """A DO_WHILE needs a loopCondition or an items input."""
    error = invalid(workflow(task("l", "DO_WHILE", loopOver=[task("b")])))
    assert error.path == "tasks[0].loopCondition"
    assert "needs a loopCondition or an items input parameter" in str(error)


def test_loop_over_items_needs_no_condition() -> None:
    """items alone drives the loop."""
    items = {"items": "${workflow.input.list}"}
    parse_definition(workflow(task("l", "DO_WHILE", inputParameters=items, loopOver=[task("b")])))


# SUB_WORKFLOW, WAIT, EVENT, TERMINATE, INLINE ---------------------------------------------------


@pytest.mark.parametrize("params", [None, {}, {"name": ""}, {"version": 2}])
def test_sub_workflow_without_name_or_definition(params: Json) -> None:
    """A SUB_WORKFLOW names its workflow or carries its definition."""
    error = invalid(workflow(task("s", "SUB_WORKFLOW", subWorkflowParam=params)))
    assert error.path == "tasks[0].subWorkflowParam"
    assert "needs subWorkflowParam with a name or a workflowDefinition" in str(error)


def test_inline_sub_workflow_is_checked_with_its_path() -> None:
    """Problems inside an inline definition are named below workflowDefinition."""
    inline = workflow(task("a"), task("a"), name="child")
    error = invalid(workflow(sub("s", "child", workflowDefinition=inline)))
    assert error.path == "tasks[0].subWorkflowParam.workflowDefinition.tasks[1].taskReferenceName"
    assert "first used at tasks[0].subWorkflowParam.workflowDefinition.tasks[0]" in str(error)


def test_inline_sub_workflow_has_its_own_reference_names() -> None:
    """A child may reuse its parent's reference names; its expressions see only its own tasks."""
    inline = workflow(task("s", inputParameters={"x": "${workflow.input.x}"}), name="child")
    parse_definition(workflow(sub("s", workflowDefinition=inline)))
    leaking = workflow(task("c", inputParameters={"x": "${outer.output}"}), name="child")
    error = invalid(workflow(task("outer"), sub("s", workflowDefinition=leaking)))
    assert error.path == "tasks[1].subWorkflowParam.workflowDefinition.tasks[0].inputParameters.x"


def test_wait_with_both_duration_and_until() -> None:
    """A WAIT takes a duration or an until, not both."""
    inputs = {"duration": "10s", "until": "2030-01-01 10:00 UTC"}
    error = invalid(workflow(task("w", "WAIT", inputParameters=inputs)))
    assert error.path == "tasks[0].inputParameters"
    assert "WAIT 'w' has both duration and until" in str(error)


@pytest.mark.parametrize("key", ["duration", "until"])
def test_wait_with_an_unparseable_literal(key: str) -> None:
    """A literal duration or until that does not parse is named at its input."""
    error = invalid(workflow(task("w", "WAIT", inputParameters={key: "soonish"})))
    assert error.path == f"tasks[0].inputParameters.{key}"
    assert f"WAIT 'w': {key} 'soonish' does not parse" in str(error)


def test_wait_with_an_expression_is_not_parsed_early() -> None:
    """A duration given as an expression is only known at run time."""
    parse_definition(
        workflow(task("w", "WAIT", inputParameters={"duration": "${workflow.input.d}"}))
    )


def test_event_without_sink() -> None:
    """An EVENT task needs a sink."""
    error = invalid(workflow(task("e", "EVENT")))
    assert error.path == "tasks[0].sink"


@pytest.mark.parametrize("status", ["DONE", "completed", 1])
def test_terminate_with_an_unknown_literal_status(status: Json) -> None:
    """terminationStatus is COMPLETED, FAILED or TERMINATED (Conductor's spelling)."""
    inputs = {"terminationStatus": status}
    error = invalid(workflow(task("t", "TERMINATE", inputParameters=inputs)))
    assert error.path == "tasks[0].inputParameters.terminationStatus"
    assert "is not one of COMPLETED, FAILED, TERMINATED" in str(error)


def test_terminate_with_an_expression_status_is_allowed() -> None:
    """A status given as an expression is only known at run time."""
    inputs = {"terminationStatus": "${workflow.input.status}"}
    parse_definition(workflow(task("t", "TERMINATE", inputParameters=inputs)))


def test_inline_without_expression() -> None:
    """An INLINE task needs an expression input."""
    error = invalid(workflow(task("i", "INLINE", inputParameters={"evaluatorType": "javascript"})))
    assert error.path == "tasks[0]"


def test_problems_lists_every_problem_in_order() -> None:
    """problems() returns all problems of a definition, not only the first."""
    document = workflow(
        task("a"), task("a"), task("e", "EVENT"), task("i", "INLINE"), switch("s", expression="")
    )
    found = problems(parse_definition_unchecked(document), SOURCE)
    assert [p.path for p in found] == [
        "tasks[1].taskReferenceName",
        "tasks[2].sink",
        "tasks[3]",
        "tasks[4].expression",
    ]
    assert all(p.source == SOURCE for p in found)


def parse_definition_unchecked(document: Json) -> WorkflowDef:
    """The model of ``document`` without the checks parse_definition adds."""
    return WorkflowDef.model_validate(document)


# Scripts -----------------------------------------------------------------------------------------


SCRIPTS = [
    (
        switch("s", evaluatorType="javascript", expression="$.x ?? BAD"),
        "tasks[0].expression",
        "SWITCH 's' expression",
    ),
    (
        task("d", "DECISION", caseExpression="BAD", decisionCases={"a": [task("x")]}),
        "tasks[0].caseExpression",
        "DECISION 'd' caseExpression",
    ),
    (
        task("l", "DO_WHILE", loopCondition="$.l.iteration < BAD", loopOver=[task("b")]),
        "tasks[0].loopCondition",
        "DO_WHILE 'l' loopCondition",
    ),
    (
        task("i", "INLINE", inputParameters={"evaluatorType": "graaljs", "expression": "BAD"}),
        "tasks[0].inputParameters.expression",
        "INLINE 'i' expression",
    ),
    (
        task("fn", "LAMBDA", inputParameters={"scriptExpression": "return BAD"}),
        "tasks[0].inputParameters.scriptExpression",
        "LAMBDA 'fn' scriptExpression",
    ),
    (
        sub(
            "s",
            workflowDefinition=workflow(task("i", "INLINE", inputParameters={"expression": "BAD"})),
        ),
        "tasks[0].subWorkflowParam.workflowDefinition.tasks[0].inputParameters.expression",
        "INLINE 'i' expression",
    ),
]


@pytest.mark.parametrize(("document", "path", "what"), SCRIPTS, ids=[p for _, p, _ in SCRIPTS])
def test_each_script_is_checked_at_its_path(document: Json, path: str, what: str) -> None:
    """SWITCH, DECISION, DO_WHILE, INLINE and LAMBDA scripts (inline children too) are checked."""
    parsed = parse_definition(workflow(document))
    with pytest.raises(DefinitionError) as caught:
        check_scripts(parsed, SOURCE, Rejecting())
    assert caught.value.path == path
    assert str(caught.value) == (
        f"{SOURCE}: {path}: {what} does not parse as JavaScript: unexpected BAD"
    )


def test_values_and_expressions_are_not_scripts() -> None:
    """value-param switches, non-JS evaluators and scripts given as ${...} are not checked."""
    check = Rejecting()
    parsed = parse_definition(
        workflow(
            switch("s", expression="BAD"),
            task("i", "INLINE", inputParameters={"expression": "${workflow.input.BAD}"}),
            task(
                "v", "INLINE", inputParameters={"evaluatorType": "value-param", "expression": "BAD"}
            ),
            task("l", "LAMBDA", inputParameters={"scriptExpression": "${workflow.input.BAD}"}),
            task("ok", "INLINE", inputParameters={"expression": "1 + 1"}),
            task("fn", "LAMBDA", inputParameters={"scriptExpression": "return 2;"}),
        )
    )
    check_scripts(parsed, SOURCE, check)
    assert check.seen == ["1 + 1", "(function () { return 2; })()"]


@pytest.fixture(scope="module")
def v8() -> Iterator[JavaScriptSyntax]:
    """One JavaScript syntax checker for the module."""
    checker = JavaScriptSyntax()
    yield checker
    checker.close()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("$.amount > 100 ? 'big' : 'small'", None),
        ("if ($.x) { true; } else { false; } // trailing comment", None),
        ("function f() { return 1; }\nf();", None),
        ("(function () { return $.a; })()", None),
        ("$.amount >", "Unexpected end of input"),
        ("$.a'", "Invalid or unexpected token"),
        ("return 1", "Illegal return statement"),
        ("'use strict'; with ($) {}", "Strict mode code may not include a with statement"),
    ],
)
def test_javascript_syntax_parses_like_the_script_engine(
    v8: JavaScriptSyntax, code: str, message: str | None
) -> None:
    """Scripts parse as a program binding `$`: a top-level return is illegal, as at run time."""
    assert v8(code) == message


@pytest.mark.parametrize(
    "code", ["while (true) {}", "throw new Error('boom')", "var parsed = 1; arguments[2]"]
)
def test_javascript_syntax_never_runs_the_script(v8: JavaScriptSyntax, code: str) -> None:
    """Checking a script that loops, throws or pokes at the wrapper only parses it."""
    assert v8(code) is None


def test_validate_set_checks_scripts_with_v8_and_names_the_file() -> None:
    """validate_set runs the JavaScript check by default and names the definition's source."""
    loop = task("l", "DO_WHILE", loopCondition="$.l['iteration'] <", loopOver=[task("b")])
    flow = parse_definition(workflow(loop))
    with pytest.raises(DefinitionError) as caught:
        validate_set([flow], sources={"flow:1": "defs/flow.json"})
    assert caught.value.source == "defs/flow.json"
    assert caught.value.path == "tasks[0].loopCondition"
    assert "does not parse as JavaScript: Unexpected end of input" in str(caught.value)


def test_lambda_may_return_but_inline_may_not() -> None:
    """A LAMBDA script is a function body, an INLINE expression a program, as they run."""
    lam = task("fn", "LAMBDA", inputParameters={"scriptExpression": "return {ok: true};"})
    assert validate_set([parse_definition(workflow(lam))]) == []
    inline = task("i", "INLINE", inputParameters={"expression": "return {ok: true};"})
    with pytest.raises(DefinitionError, match="Illegal return statement") as caught:
        validate_set([parse_definition(workflow(inline))])
    assert caught.value.path == "tasks[0].inputParameters.expression"


def test_validate_set_rejects_a_definition_given_twice() -> None:
    """The same name:version twice in one registration is an error."""
    flow = definition("flow")
    with pytest.raises(DefinitionError, match="definition flow:1 is given twice"):
        validate_set([flow, flow], syntax=Rejecting())


def test_validate_set_runs_the_single_definition_checks() -> None:
    """A definition built without parse_definition still gets its checks at registration."""
    unchecked = parse_definition_unchecked(workflow(task("a"), task("a")))
    with pytest.raises(DefinitionError) as caught:
        validate_set([unchecked], syntax=Rejecting())
    assert caught.value.source == "flow:1"
    assert caught.value.path == "tasks[1].taskReferenceName"


# Sub-workflows -----------------------------------------------------------------------------------


def test_missing_sub_workflow_is_a_warning_with_its_path() -> None:
    """A sub-workflow that is neither registered nor in the set is warned about, not refused."""
    parent = definition("parent", task("first"), sub("child_call", "child", version=2))
    warnings = validate_set(
        [parent], Registered(definition("child")), sources={"parent:1": "p.json"}
    )
    assert warnings == [
        DefinitionWarning(
            "sub-workflow 'child' (version 2) is not registered",
            source="p.json",
            path="tasks[1].subWorkflowParam.name",
        )
    ]
    assert str(warnings[0]) == (
        "p.json: tasks[1].subWorkflowParam.name: sub-workflow 'child' (version 2) is not registered"
    )


def test_sub_workflow_in_the_set_or_registered_is_found() -> None:
    """A child in the same registration, or already registered, raises no warning."""
    parent = definition("parent", sub("a", "child_one"), sub("b", "child_two", version=1))
    found = check_sub_workflows(
        [parent, definition("child_one")], Registered(definition("child_two"))
    )
    assert found == []


def test_missing_sub_workflow_inside_an_inline_definition() -> None:
    """A call inside an inline child is warned about at its full path in the parent."""
    inline = workflow(sub("deep", "nowhere"), name="inline_child")
    parent = definition("parent", sub("s", workflowDefinition=inline))
    [warning] = check_sub_workflows([parent])
    assert warning.source == "parent:1"
    assert (
        warning.path
        == "tasks[0].subWorkflowParam.workflowDefinition.tasks[0].subWorkflowParam.name"
    )
    assert "'nowhere' (any version)" in warning.message


def test_sub_workflow_named_by_an_expression_is_not_followed() -> None:
    """A name computed at run time cannot be checked."""
    parent = definition("parent", sub("s", "${workflow.input.child}"))
    assert check_sub_workflows([parent]) == []


def test_sub_workflow_cycle_in_the_set() -> None:
    """a -> b -> a is refused, naming the cycle and where it starts."""
    a = definition("a", sub("call_b", "b"))
    b = definition("b", task("x"), sub("call_a", "a", version=1))
    with pytest.raises(DefinitionError) as caught:
        validate_set([a, b], sources={"a:1": "a.json"}, syntax=Rejecting())
    assert caught.value.detail == "sub-workflow cycle: a:1 -> b:1 -> a:1"
    assert caught.value.source == "a.json"
    assert caught.value.path == "tasks[0].subWorkflowParam.name"


def test_a_workflow_calling_itself() -> None:
    """Self-reference is a cycle of one."""
    a = definition("a", task("x"), sub("again", "a"))
    with pytest.raises(DefinitionError, match=r"sub-workflow cycle: a:1 -> a:1"):
        check_sub_workflows([a])


def test_cycle_through_an_inline_definition() -> None:
    """An inline child calling its parent by name closes a cycle."""
    inline = workflow(sub("back", "a"), name="helper")
    a = definition("a", sub("inline_call", workflowDefinition=inline))
    with pytest.raises(DefinitionError) as caught:
        check_sub_workflows([a])
    assert caught.value.detail == "sub-workflow cycle: a:1 -> helper:1 -> a:1"
    assert caught.value.path == "tasks[0].subWorkflowParam"


def test_cycle_through_registered_definitions() -> None:
    """A new definition can close a cycle with ones registered earlier."""
    registered = Registered(definition("b", sub("to_c", "c")), definition("c", sub("to_a", "a")))
    a = definition("a", sub("to_b", "b"))
    with pytest.raises(DefinitionError) as caught:
        check_sub_workflows([a], registered)
    assert caught.value.detail == "sub-workflow cycle: a:1 -> b:1 -> c:1 -> a:1"
    assert caught.value.source == "a:1"


def test_a_new_version_can_break_a_registered_cycle() -> None:
    """Calls without a version run the latest, which the set being registered provides."""
    registered = Registered(definition("a", sub("to_b", "b")), definition("b", sub("to_a", "a")))
    a2 = definition("a", task("no_more_calls"), version=2)
    assert check_sub_workflows([a2], registered) == []


def test_a_pinned_registered_cycle_reached_from_the_set() -> None:
    """Calling into a cycle pinned by version among registered definitions is refused too."""
    registered = Registered(
        definition("a", sub("to_b", "b")), definition("b", sub("to_a1", "a", version=1))
    )
    c = definition("c", sub("to_a1", "a", version=1))
    with pytest.raises(DefinitionError) as caught:
        check_sub_workflows([definition("a", version=2), c], registered)
    assert caught.value.detail == "sub-workflow cycle: a:1 -> b:1 -> a:1"
    assert caught.value.source == "a:1"
