"""Parse and check workflow definitions, naming the exact problem and the JSON path where it is.

Checks come in three layers, from cheap and pure to cross-definition:

1. :func:`parse_definition` (and :func:`load_definition_file`): the schema, then everything one
   definition shows on its own (:func:`problems`): unique reference names anywhere in the tree,
   expressions naming known tasks, FORK/JOIN pairing, what each operator needs. Pure, so the
   engine and the processor use it too.
2. :func:`check_scripts`: the JavaScript a definition carries (SWITCH and DECISION expressions,
   DO_WHILE conditions, literal INLINE and LAMBDA scripts) parses, checked without running it
   by a :data:`SyntaxCheck` (:class:`JavaScriptSyntax` by default, one V8 isolate).
3. :func:`check_sub_workflows`: across the definitions being registered and those already
   registered, a sub-workflow cycle is an error and a missing sub-workflow a warning.

Registering definitions (the CLI) runs all three, refusing on the first error::

    definitions = [d for path in files for d in load_definition_file(path)]  # layer 1
    table = DefinitionTable(settings)  # what is registered already
    table.refresh()
    try:
        warnings = validate_set(definitions, known=table)  # layers 2 and 3
    finally:
        table.close()
    for warning in warnings:
        print(f"warning: {warning}")
    client.register(definitions)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from orchestrator.dsl.durations import parse_duration, parse_until
from orchestrator.dsl.expressions import expressions
from orchestrator.dsl.model import TaskDef, WorkflowDef, WorkflowTask
from orchestrator.errors import DefinitionError

Json = Any
#: A problem found in a definition: what is wrong, and the JSON path where it is.
Problem = tuple[str, str]
#: Checks a script's syntax without running it: the parser's message, or None if it parses.
SyntaxCheck = Callable[[str], "str | None"]

#: Expression roots that are not task reference names.
BUILTIN_ROOTS = frozenset({"workflow"})
JAVASCRIPT_EVALUATORS = frozenset({"javascript", "graaljs"})
SWITCH_EVALUATORS = JAVASCRIPT_EVALUATORS | {"value-param"}
TERMINATION_STATUSES = ("COMPLETED", "FAILED", "TERMINATED")
FORKS = frozenset({"FORK_JOIN", "FORK", "FORK_JOIN_DYNAMIC"})


@dataclass(frozen=True)
class DefinitionWarning:
    """Something registration allows but that will probably fail at run time."""

    message: str
    source: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.path) if part)
        return f"{where}: {self.message}" if where else self.message


class Lookup(Protocol):
    """Registered definitions by name and version (the processor's table fits)."""

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The definition with this name and version, or the latest version when None."""
        ...


# One definition ---------------------------------------------------------------------------------


def parse_definition(document: Json, source: str | None = None) -> WorkflowDef:
    """Validate a JSON document as a WorkflowDef; raise DefinitionError naming the field path."""
    try:
        definition = WorkflowDef.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DefinitionError(first["msg"], source=source, path=_field_path(first["loc"])) from exc
    check_definition(definition, source)
    return definition


def _documents(path: FilePath) -> list[tuple[Json, str]]:
    """The JSON documents of a file holding one object or a list, each with its source name."""
    source = str(path)
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise DefinitionError(f"cannot read file: {exc.strerror}", source=source) from exc
    except orjson.JSONDecodeError as exc:
        raise DefinitionError(f"not valid JSON: {exc}", source=source) from exc
    if isinstance(document, list):
        return [(doc, f"{source}[{i}]") for i, doc in enumerate(document)]
    return [(document, source)]


def load_definition_file(path: FilePath) -> list[WorkflowDef]:
    """Read a file holding one definition or a JSON list of them."""
    return [parse_definition(doc, source) for doc, source in _documents(path)]


def load_task_definition_file(path: FilePath) -> list[TaskDef]:
    """Read a file holding one Conductor TaskDef or a JSON list of them."""
    task_defs = []
    for document, source in _documents(path):
        try:
            task_defs.append(TaskDef.model_validate(document))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise DefinitionError(
                first["msg"], source=source, path=_field_path(first["loc"])
            ) from exc
    return task_defs


def check_definition(definition: WorkflowDef, source: str | None = None) -> None:
    """Raise DefinitionError for the first problem :func:`problems` finds."""
    for error in problems(definition, source):
        raise error


def problems(definition: WorkflowDef, source: str | None = None) -> list[DefinitionError]:
    """Every problem the definition shows on its own (pure: no script runs or parses).

    Grouped by check (reference names, expressions, FORK/JOIN pairing, operators), each group
    in document order; :func:`parse_definition` raises the first.
    """
    return [
        DefinitionError(message, source=source, path=path) for message, path in _found(definition)
    ]


def _found(definition: WorkflowDef, prefix: str = "") -> Iterator[Problem]:
    located = list(_tree(definition.tasks, f"{prefix}tasks"))
    yield from _duplicates(located)
    yield from _expression_roots(definition, located, prefix)
    for tasks, path in _task_lists(definition.tasks, f"{prefix}tasks"):
        yield from _fork_join_pairs(tasks, path)
    for task, path in located:
        yield from _operator(task, path)


def _tree(tasks: list[WorkflowTask], path: str) -> Iterator[tuple[WorkflowTask, str]]:
    """Every task of the tree with its JSON path, depth first, in document order."""
    for index, task in enumerate(tasks):
        here = f"{path}[{index}]"
        yield task, here
        for branch, branch_path in _branches(task, here):
            yield from _tree(branch, branch_path)


def _task_lists(tasks: list[WorkflowTask], path: str) -> Iterator[tuple[list[WorkflowTask], str]]:
    """Every task list of the tree (the top one, cases, fork arms, loop bodies) with its path."""
    yield tasks, path
    for index, task in enumerate(tasks):
        for branch, branch_path in _branches(task, f"{path}[{index}]"):
            yield from _task_lists(branch, branch_path)


def _branches(task: WorkflowTask, here: str) -> Iterator[tuple[list[WorkflowTask], str]]:
    for case, branch in task.decisionCases.items():
        yield branch, f"{here}.decisionCases.{case}"
    yield task.defaultCase, f"{here}.defaultCase"
    for arm, tasks in enumerate(task.forkTasks):
        yield tasks, f"{here}.forkTasks[{arm}]"
    yield task.loopOver, f"{here}.loopOver"


def _duplicates(located: list[tuple[WorkflowTask, str]]) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for task, path in located:
        ref = task.taskReferenceName
        if ref in seen:
            yield (
                f"duplicate taskReferenceName {ref!r} (first used at {seen[ref]})",
                f"{path}.taskReferenceName",
            )
        else:
            seen[ref] = path


def _expression_roots(
    definition: WorkflowDef, located: list[tuple[WorkflowTask, str]], prefix: str
) -> Iterator[Problem]:
    """Expressions parse and name a task of the tree (any name, under a dynamic fork)."""
    known = BUILTIN_ROOTS | {task.taskReferenceName for task, _ in located}
    # A dynamic fork's tasks are named at run time, so any root may be one of them.
    dynamic = any(task.type == "FORK_JOIN_DYNAMIC" for task, _ in located)
    templates = [(task.inputParameters, f"{path}.inputParameters") for task, path in located]
    templates.append((definition.outputParameters, f"{prefix}outputParameters"))
    for template, where in templates:
        try:
            found = list(expressions(template, where))
        except DefinitionError as exc:
            yield exc.detail, exc.path or where
            continue
        for path_text, path in found:
            if path.root not in known and not dynamic:
                yield f"expression ${{{path.text}}} refers to unknown task {path.root!r}", path_text


def _fork_join_pairs(tasks: list[WorkflowTask], path: str) -> Iterator[Problem]:
    """A fork is followed by a JOIN; a JOIN follows a fork and joins on tasks inside it."""
    for index, task in enumerate(tasks):
        here, ref = f"{path}[{index}]", task.taskReferenceName
        following = tasks[index + 1] if index + 1 < len(tasks) else None
        previous = tasks[index - 1] if index else None
        if task.type in FORKS and (following is None or following.type != "JOIN"):
            yield f"{task.type} {ref!r} is not followed by a JOIN in the same task list", here
        if task.type != "JOIN":
            continue
        if previous is None or previous.type not in FORKS:
            yield f"JOIN {ref!r} does not directly follow a FORK_JOIN or FORK_JOIN_DYNAMIC", here
        elif previous.type != "FORK_JOIN_DYNAMIC":
            inside = {t.taskReferenceName for arm in previous.forkTasks for t in _walk(arm)}
            for position, joined in enumerate(task.joinOn):
                if joined not in inside:
                    yield (
                        f"JOIN {ref!r} joins on {joined!r}, which is not inside "
                        f"{previous.type} {previous.taskReferenceName!r} before it",
                        f"{here}.joinOn[{position}]",
                    )


def _walk(tasks: list[WorkflowTask]) -> Iterator[WorkflowTask]:
    for task, _ in _tree(tasks, ""):
        yield task


def _operator(task: WorkflowTask, path: str) -> Iterator[Problem]:
    """What each operator needs to run."""
    match task.type:
        case "SWITCH" | "DECISION":
            yield from _switch(task, path)
        case "FORK_JOIN" | "FORK" if not task.forkTasks:
            yield f"{task.type} {task.taskReferenceName!r} has no forkTasks", f"{path}.forkTasks"
        case "DO_WHILE":
            yield from _loop(task, path)
        case "SUB_WORKFLOW":
            yield from _sub_workflow(task, path)
        case "WAIT":
            yield from _wait(task, path)
        case "HUMAN":
            yield from _human(task, path)
        case "CONTINUE_AS_NEW":
            yield from _continue_as_new(task, path)
        case "EVENT" if not task.sink:
            yield (
                f"EVENT {task.taskReferenceName!r} needs a sink (like kafka:topic)",
                f"{path}.sink",
            )
        case "TERMINATE":
            yield from _terminate(task, path)
        case "INLINE" if "expression" not in task.inputParameters:
            yield f"INLINE {task.taskReferenceName!r} needs an expression input", path
        case _:
            pass


def _switch(task: WorkflowTask, path: str) -> Iterator[Problem]:
    kind, ref = task.type, task.taskReferenceName
    if not task.decisionCases and not task.defaultCase:
        yield f"{kind} {ref!r} has no cases: give decisionCases, a defaultCase or both", path
    if kind == "DECISION":
        if not task.caseValueParam and not task.caseExpression:
            yield f"DECISION {ref!r} needs a caseValueParam or a caseExpression", path
        return
    evaluator = task.evaluatorType or "value-param"
    if evaluator not in SWITCH_EVALUATORS:
        supported = ", ".join(sorted(SWITCH_EVALUATORS))
        yield (
            f"SWITCH {ref!r}: evaluatorType {evaluator!r} is not supported ({supported})",
            f"{path}.evaluatorType",
        )
    elif not task.expression:
        what = "input parameter to switch on" if evaluator == "value-param" else "script"
        yield (
            f"SWITCH {ref!r} with evaluatorType {evaluator} needs an expression (the {what})",
            f"{path}.expression",
        )


def _loop(task: WorkflowTask, path: str) -> Iterator[Problem]:
    ref = task.taskReferenceName
    if not task.loopOver:
        yield f"DO_WHILE {ref!r} has no loopOver tasks", f"{path}.loopOver"
    if not task.loopCondition and "items" not in task.inputParameters:
        yield (
            f"DO_WHILE {ref!r} needs a loopCondition or an items input parameter",
            f"{path}.loopCondition",
        )


def _sub_workflow(task: WorkflowTask, path: str) -> Iterator[Problem]:
    params = task.subWorkflowParam
    if params is not None and params.workflowDefinition is not None:
        yield from _found(params.workflowDefinition, f"{path}.subWorkflowParam.workflowDefinition.")
    elif params is None or not params.name:
        yield (
            f"SUB_WORKFLOW {task.taskReferenceName!r} needs subWorkflowParam with a name "
            "or a workflowDefinition",
            f"{path}.subWorkflowParam",
        )


def _wait(task: WorkflowTask, path: str) -> Iterator[Problem]:
    data, ref = task.inputParameters, task.taskReferenceName
    if data.get("duration") and data.get("until"):
        yield f"WAIT {ref!r} has both duration and until; give one", f"{path}.inputParameters"
    parsers: dict[str, Callable[[str], int]] = {"duration": parse_duration, "until": parse_until}
    for key, parse in parsers.items():
        value = data.get(key)
        if not _literal(value):
            continue
        try:
            parse(str(value))
        except ValueError as exc:
            yield (
                f"WAIT {ref!r}: {key} {value!r} does not parse: {exc}",
                f"{path}.inputParameters.{key}",
            )


def _human(task: WorkflowTask, path: str) -> Iterator[Problem]:
    """Literal due times and escalation steps of a HUMAN task must parse."""
    ref, data = task.taskReferenceName, task.inputParameters
    steps = data.get("escalation")
    specs: list[tuple[str, Any]] = [(f"{path}.inputParameters", data)]
    if _literal(steps) and not isinstance(steps, list):
        yield f"HUMAN {ref!r}: escalation must be a list of steps", f"{path}.inputParameters"
    elif isinstance(steps, list):
        specs += [(f"{path}.inputParameters.escalation[{i}]", s) for i, s in enumerate(steps)]
    for where, spec in specs:
        if not _literal(spec):
            continue
        if not isinstance(spec, dict):
            yield f"HUMAN {ref!r}: an escalation step must be an object", where
            continue
        if spec.get("dueIn") and spec.get("dueAt"):
            yield f"HUMAN {ref!r}: give dueIn or dueAt, not both", where
        for key, parse in (("dueIn", parse_duration), ("dueAt", parse_until)):
            value = spec.get(key)
            if not _literal(value) or value in (None, ""):
                continue
            try:
                parse(str(value))
            except ValueError as exc:
                yield f"HUMAN {ref!r}: {key} {value!r} does not parse: {exc}", f"{where}.{key}"


def _continue_as_new(task: WorkflowTask, path: str) -> Iterator[Problem]:
    value = task.inputParameters.get("input", {})
    if _literal(value) and not isinstance(value, dict):
        yield (
            f"CONTINUE_AS_NEW {task.taskReferenceName!r}: input must be an object (the next "
            "run's input)",
            f"{path}.inputParameters.input",
        )


def _terminate(task: WorkflowTask, path: str) -> Iterator[Problem]:
    status = task.inputParameters.get("terminationStatus")
    if _literal(status) and status not in TERMINATION_STATUSES:
        yield (
            f"TERMINATE {task.taskReferenceName!r}: terminationStatus {status!r} is not one of "
            + ", ".join(TERMINATION_STATUSES),
            f"{path}.inputParameters.terminationStatus",
        )


def _literal(value: Json) -> bool:
    """Whether ``value`` is given outright (not empty, not an expression resolved at run time)."""
    if value is None or value == "":
        return False
    return not (isinstance(value, str) and "${" in value)


def _field_path(location: Iterable[int | str]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# Scripts ----------------------------------------------------------------------------------------

# Parses a script the way the script engine runs it (a direct eval in a sloppy function binding
# `$`, so a top-level `return` is illegal there too) without running any of it: the source is
# parsed whole before anything executes, and its first statement is a `throw` of a sentinel.
# The wrapper declares no `let` or `const` a script's `var` could collide with.
_CHECKER = r"""
(function () {
  var parsed = {}, SyntaxErrorType = SyntaxError, strict = /^\s*(['"])use strict\1/;
  function check($) {
    try {
      eval((strict.test(arguments[1]) ? "'use strict'; " : '') +
        'throw arguments[2];\n' + arguments[1]);
    } catch (error) {
      if (error !== parsed && error instanceof SyntaxErrorType) { return String(error.message); }
    }
    return '';
  }
  return function (code) { return check(undefined, code, parsed); };
})()
"""


class JavaScriptSyntax:
    """A :data:`SyntaxCheck` that parses scripts in a V8 isolate of its own, never running them."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        # Imported here: only registration needs V8, and the pure engine imports this module.
        from py_mini_racer import MiniRacer  # noqa: PLC0415

        self._timeout_s = timeout_s
        self._racer = MiniRacer()
        self._racer.eval(f"var __orchestrator_syntax = {_CHECKER};")

    def __call__(self, code: str) -> str | None:
        """V8's message if ``code`` does not parse as a script, else None."""
        message = self._racer.call("__orchestrator_syntax", code, timeout_sec=self._timeout_s)
        return str(message) or None

    def close(self) -> None:
        """Free the isolate."""
        self._racer.close()


def check_scripts(definition: WorkflowDef, source: str | None, syntax: SyntaxCheck) -> None:
    """Raise DefinitionError for the first script in the definition that does not parse."""
    for what, code, path in _scripts(definition, ""):
        message = syntax(code)
        if message:
            raise DefinitionError(
                f"{what} does not parse as JavaScript: {message}", source=source, path=path
            )


def _scripts(definition: WorkflowDef, prefix: str) -> Iterator[tuple[str, str, str]]:
    """(what, code, path) of every literal script, inline sub-workflows included."""
    for task, path in _tree(definition.tasks, f"{prefix}tasks"):
        found = _script(task)
        if found is not None:
            field, code = found
            what = f"{task.type} {task.taskReferenceName!r} {field.rpartition('.')[2]}"
            yield what, code, f"{path}.{field}"
        params = task.subWorkflowParam
        if task.type == "SUB_WORKFLOW" and params and params.workflowDefinition:
            inline = f"{path}.subWorkflowParam.workflowDefinition."
            yield from _scripts(params.workflowDefinition, inline)


def _script(task: WorkflowTask) -> tuple[str, str] | None:
    """The JavaScript ``task`` carries, as (field path, code as the engine runs it), or None.

    Scripts in inputParameters count only when literal: a ``${...}`` there is resolved first.
    """
    data = task.inputParameters
    match task.type:
        case "SWITCH" if (task.evaluatorType or "value-param") in JAVASCRIPT_EVALUATORS:
            return _code("expression", task.expression)
        case "DECISION":
            return _code("caseExpression", task.caseExpression)
        case "DO_WHILE":
            return _code("loopCondition", task.loopCondition)
        case "INLINE" if (data.get("evaluatorType") or "javascript") in JAVASCRIPT_EVALUATORS:
            code = data.get("expression")
            return _code("inputParameters.expression", code) if _literal(code) else None
        case "LAMBDA" if _literal(code := data.get("scriptExpression")):
            # The engine runs a LAMBDA's script as a function body, as Conductor does.
            return _code("inputParameters.scriptExpression", f"(function () {{ {code} }})()")
        case _:
            return None


def _code(field: str, code: Json) -> tuple[str, str] | None:
    return (field, code) if isinstance(code, str) and code else None


# Sets of definitions ----------------------------------------------------------------------------


def validate_set(
    definitions: Sequence[WorkflowDef],
    known: Lookup | None = None,
    *,
    sources: Mapping[str, str] | None = None,
    syntax: SyntaxCheck | None = None,
) -> list[DefinitionWarning]:
    """Check definitions about to be registered together; raise the first error, return warnings.

    Each definition gets the checks of :func:`parse_definition` and :func:`check_scripts`
    (with ``syntax``, or a :class:`JavaScriptSyntax` made for the call); then the set gets
    :func:`check_sub_workflows` against itself and ``known``. ``sources`` maps ``name:version``
    to where a definition came from (a file), for messages; the key stands in otherwise.
    """
    sources = sources or {}
    seen: set[str] = set()
    for definition in definitions:
        if definition.key in seen:
            raise DefinitionError(
                f"definition {definition.key} is given twice", source=_source(definition, sources)
            )
        seen.add(definition.key)
    with _checker(syntax) as check:
        for definition in definitions:
            check_definition(definition, _source(definition, sources))
            check_scripts(definition, _source(definition, sources), check)
    return check_sub_workflows(definitions, known, sources=sources)


@contextlib.contextmanager
def _checker(syntax: SyntaxCheck | None) -> Iterator[SyntaxCheck]:
    if syntax is not None:
        yield syntax
        return
    v8 = JavaScriptSyntax()
    try:
        yield v8
    finally:
        v8.close()


def _source(definition: WorkflowDef, sources: Mapping[str, str]) -> str:
    return sources.get(definition.key, definition.key)


@dataclass(frozen=True)
class _Node:
    """A definition in the sub-workflow graph: registered, being registered, or inline."""

    key: str  # identity: name:version, or <owner>#<path> for an inline definition
    label: str  # name:version, as messages show it
    definition: WorkflowDef
    owner: str  # name:version of the registered definition the node is written in
    prefix: str  # the node's JSON path inside its owner


@dataclass(frozen=True)
class _Call:
    """One SUB_WORKFLOW task: where it is (in its owner) and the node it runs, if known."""

    path: str
    name: str
    version: int | None
    child: _Node | None
    inline: bool = False


class _Graph:
    """Sub-workflow calls between the set being registered and the registered definitions."""

    def __init__(self, definitions: Sequence[WorkflowDef], known: Lookup | None) -> None:
        self._pending: dict[str, dict[int, WorkflowDef]] = {}
        for definition in definitions:
            self._pending.setdefault(definition.name, {})[definition.version] = definition
        self._known = known

    def resolve(self, name: str, version: int | None) -> WorkflowDef | None:
        """The definition a call runs: one being registered wins over a registered one."""
        pending = self._pending.get(name, {})
        registered = self._known.get(name, version) if self._known is not None else None
        if version is not None:
            return pending.get(version, registered)
        candidates = [*pending.values(), *([registered] if registered else [])]
        return max(candidates, key=lambda d: d.version, default=None)

    def calls(self, node: _Node) -> Iterator[_Call]:
        """The SUB_WORKFLOW calls written in ``node`` (not in its inline children)."""
        for task, path in _tree(node.definition.tasks, f"{node.prefix}tasks"):
            params = task.subWorkflowParam
            if task.type != "SUB_WORKFLOW" or params is None:
                continue
            where = f"{path}.subWorkflowParam"
            inline = params.workflowDefinition
            if inline is not None:
                prefix = f"{where}.workflowDefinition."
                child = _Node(f"{node.owner}#{where}", inline.key, inline, node.owner, prefix)
                yield _Call(where, inline.name, inline.version, child, inline=True)
            elif params.name and "${" not in params.name:
                found = self.resolve(params.name, params.version)
                named = _node(found) if found is not None else None
                yield _Call(f"{where}.name", params.name, params.version, named)


def _node(definition: WorkflowDef) -> _Node:
    return _Node(definition.key, definition.key, definition, definition.key, "")


def check_sub_workflows(
    definitions: Sequence[WorkflowDef],
    known: Lookup | None = None,
    *,
    sources: Mapping[str, str] | None = None,
) -> list[DefinitionWarning]:
    """Raise DefinitionError for a sub-workflow cycle; warn of sub-workflows that do not exist.

    Calls resolve against ``definitions`` first, then ``known`` (what is registered); a call
    without a version runs the latest. Names given as expressions are not followed.
    """
    sources = sources or {}
    graph = _Graph(definitions, known)
    warnings: list[DefinitionWarning] = []
    for definition in definitions:
        for call, owner in _inline_closure(graph, _node(definition)):
            if call.child is None:
                wanted = f"version {call.version}" if call.version is not None else "any version"
                warnings.append(
                    DefinitionWarning(
                        f"sub-workflow {call.name!r} ({wanted}) is not registered",
                        source=sources.get(owner, owner),
                        path=call.path,
                    )
                )
    finished: set[str] = set()
    for definition in definitions:
        cycle = _cycle(graph, _node(definition), [], finished)
        if cycle is not None:
            raise _cycle_error(cycle, {d.key for d in definitions}, sources)
    return warnings


def _cycle_error(
    cycle: list[tuple[_Node, str]], registering: set[str], sources: Mapping[str, str]
) -> DefinitionError:
    """The error naming ``cycle``, told from the first call in a definition being registered."""
    start = next((i for i, (node, _) in enumerate(cycle) if node.owner in registering), 0)
    cycle = cycle[start:] + cycle[:start]
    labels = " -> ".join([*(node.label for node, _ in cycle), cycle[0][0].label])
    node, path = cycle[0]
    owner = node.owner
    return DefinitionError(
        f"sub-workflow cycle: {labels}", source=sources.get(owner, owner), path=path
    )


def _inline_closure(graph: _Graph, node: _Node) -> Iterator[tuple[_Call, str]]:
    """The calls in ``node`` and in the inline definitions written inside it."""
    for call in graph.calls(node):
        yield call, node.owner
        if call.inline and call.child is not None:
            yield from _inline_closure(graph, call.child)


def _cycle(
    graph: _Graph, node: _Node, stack: list[tuple[_Node, str]], finished: set[str]
) -> list[tuple[_Node, str]] | None:
    """A cycle reachable from ``node`` as (node, path of its call to the next) pairs, or None."""
    if node.key in finished:
        return None
    for call in graph.calls(node):
        if call.child is None:
            continue
        here = [*stack, (node, call.path)]
        on_stack = [entry.key for entry, _ in here]
        if call.child.key in on_stack:
            return here[on_stack.index(call.child.key) :]
        found = _cycle(graph, call.child, here, finished)
        if found is not None:
            return found
    finished.add(node.key)
    return None
