"""The script engine evaluates Conductor's JavaScript and jq, and fails clearly and safely."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest

from orchestrator import scripts
from orchestrator.errors import ScriptError
from orchestrator.scripts import ScriptEngine


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptEngine]:
    """One engine for the module, as a processor keeps one: its isolate is reused."""
    engine = ScriptEngine(timeout_ms=100, max_memory_bytes=16 * 2**20)
    yield engine
    engine.close()


def failure(engine: ScriptEngine, expression: str, bindings: dict[str, Any] | None = None) -> str:
    """The message of the ScriptError evaluating ``expression`` raises."""
    with pytest.raises(ScriptError) as caught:
        engine.javascript(expression, bindings or {})
    return str(caught.value)


# Expressions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "bindings", "expected"),
    [
        ("$.amount > 100 ? 'big' : 'small'", {"amount": 150}, "big"),
        ("$.amount > 100 ? 'big' : 'small'", {"amount": 50}, "small"),
        ("$.ref['iteration'] < 3", {"ref": {"iteration": 2}}, True),
        ("(function () { if ($.x) return {a: 1}; return null; })()", {"x": True}, {"a": 1}),
        ("(function () { if ($.x) return {a: 1}; return null; })()", {"x": False}, None),
        ("var t = $.a + $.b; t * 2", {"a": 1, "b": 2}, 6),
        ("function twice(n) { return 2 * n } twice($.n)", {"n": 21}, 42),
        ("let a = $.n; const b = 1; a + b", {"n": 1}, 2),
    ],
)
def test_expression_kinds(
    engine: ScriptEngine, expression: str, bindings: dict[str, Any], expected: Any
) -> None:
    """Plain expressions, IIFEs and statement lists all yield their value."""
    assert engine.javascript(expression, bindings) == expected


def test_bindings_round_trip(engine: ScriptEngine) -> None:
    """Nested objects, arrays, unicode and numbers reach the script and come back unchanged."""
    text = "héllo 日本 😀 \u2028"
    bindings = {"s": text, "n": [1, {"deep": [None, True, 1.5, -3]}], "e": {}}
    assert engine.javascript("$", bindings) == bindings
    assert engine.javascript("$.s.length", bindings) == len(text.encode("utf-16-le")) // 2
    assert engine.javascript("$.n[1].deep[2] * 2", bindings) == 3.0


def test_bindings_may_be_any_mapping(engine: ScriptEngine) -> None:
    """A read-only mapping binds like a dict; a key named __proto__ stays an ordinary key."""
    bindings = MappingProxyType({"inner": MappingProxyType({"__proto__": 1})})
    assert engine.javascript("$.inner.__proto__", bindings) == 1


def test_object_and_array_results(engine: ScriptEngine) -> None:
    """Objects and arrays come back as plain dicts and lists."""
    result = engine.javascript("({list: [1, 'two', {three: 3}], empty: {}, flag: false})", {})
    assert result == {"list": [1, "two", {"three": 3}], "empty": {}, "flag": False}
    assert type(result["list"]) is list


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("undefined", None),
        ("null", None),
        ("NaN", None),
        ("-Infinity", None),
        ("(function () {})", None),
        ("[1, undefined, NaN, Infinity, function () {}]", [1, None, None, None, None]),
        ("({a: undefined, b: 1})", {"b": 1}),
    ],
)
def test_values_json_cannot_hold_become_none(
    engine: ScriptEngine, expression: str, expected: Any
) -> None:
    """undefined, NaN, infinities and functions become None, as JSON.stringify has it."""
    assert engine.javascript(expression, {}) == expected


# Failures --------------------------------------------------------------------------------------


def test_throw_names_the_error(engine: ScriptEngine) -> None:
    """A thrown error reads 'script threw: <name>: <message>' on one line."""
    assert failure(engine, "$.missing.x") == (
        "script threw: TypeError: Cannot read properties of undefined (reading 'x')"
    )
    assert failure(engine, "throw 'boom'") == "script threw: boom"
    assert failure(engine, "throw {code: 7}") == 'script threw: {"code":7}'
    assert failure(engine, "throw new RangeError('two\\nlines')") == (
        "script threw: RangeError: two lines"
    )


def test_syntax_error_is_a_parse_failure(engine: ScriptEngine) -> None:
    """Source that does not parse says so; a SyntaxError thrown while running does not."""
    assert failure(engine, "(function () {") == (
        "script does not parse: SyntaxError: Unexpected end of input"
    )
    assert failure(engine, "return 1").startswith("script does not parse: SyntaxError")
    assert failure(engine, "JSON.parse('{x')").startswith("script threw: SyntaxError")


def test_results_json_cannot_hold_fail(engine: ScriptEngine) -> None:
    """BigInts, cycles and promises are refused with a message naming them."""
    assert failure(engine, "1n").startswith("script result is not JSON: TypeError")
    assert "circular" in failure(engine, "var o = {}; o.o = o; o")
    assert failure(engine, "(async function () { return 1 })()") == (
        "script result is not JSON: a Promise (async scripts are not supported)"
    )


def test_bindings_that_are_not_json_fail(engine: ScriptEngine) -> None:
    """Bindings that cannot be JSON raise ScriptError before any script runs."""
    with pytest.raises(ScriptError, match="not JSON"):
        engine.javascript("$", {"when": object()})


def test_infinite_loop_times_out_and_the_next_evaluation_works(engine: ScriptEngine) -> None:
    """An endless loop fails after about timeout_ms, and the engine goes on working."""
    started = time.monotonic()
    assert failure(engine, "while (true) {}") == "script ran longer than 100 ms"
    assert time.monotonic() - started < 2
    assert engine.javascript("1 + 1", {}) == 2


def test_memory_bomb_fails_and_the_next_evaluation_works(engine: ScriptEngine) -> None:
    """Allocating without bound fails on the memory limit, and the engine goes on working."""
    bomb = "var a = []; while (true) { a.push(new Array(100000).fill(1)); }"
    started = time.monotonic()
    assert failure(engine, bomb) == "script exceeded its memory limit"
    assert time.monotonic() - started < 2
    assert engine.javascript("2 + 2", {}) == 4


def test_arrays_v8_cannot_survive_are_refused(engine: ScriptEngine) -> None:
    """Builtins that would abort the process on huge arrays are refused before they start."""
    for bomb in (
        "Array(1e9).fill(0)",
        "'x'.repeat(2 ** 28).split('')",
        "Array.from({length: 2e9})",
    ):
        assert "elements exceed the" in failure(engine, bomb), bomb
    assert engine.javascript("Array(3).fill(0).concat(Array.from('ab'))", {}) == [0, 0, 0, "a", "b"]


def test_code_left_running_does_not_fail_the_next_evaluation(engine: ScriptEngine) -> None:
    """A never-ending continuation of one script delays the next evaluation but not fails it."""
    leftover = "(async function () { await null; while (true) {} })(); 1"
    assert engine.javascript(leftover, {}) == 1
    assert engine.javascript("'innocent'", {}) == "innocent"


# Isolation -------------------------------------------------------------------------------------


def test_nothing_leaks_between_evaluations(engine: ScriptEngine) -> None:
    """var, functions, implicit and explicit globals end with their evaluation."""
    engine.javascript("var t = 1; function f() {} implicit = 2; globalThis.explicit = 3; 0", {})
    assert (
        engine.javascript("[typeof t, typeof f, typeof implicit, typeof explicit]", {})
        == ["undefined"] * 4
    )


def test_overwritten_builtins_are_put_back(engine: ScriptEngine) -> None:
    """A script that overwrites JSON or eval does not break the next one."""
    engine.javascript("JSON = null; eval = null; Math = 1; 0", {})
    assert engine.javascript("[JSON.stringify([1]), eval('2'), Math.max(3, 4)]", {}) == [
        "[1]",
        2,
        4,
    ]


def test_scripts_reach_nothing_outside(engine: ScriptEngine) -> None:
    """No host objects, timers, buffers or module loading are in reach."""
    names = ["require", "process", "fetch", "setTimeout", "ArrayBuffer", "WebAssembly", "Atomics"]
    types = engine.javascript(f"{names!r}.map(function (n) {{ return typeof globalThis[n]; }})", {})
    assert types == ["undefined"] * len(names)
    assert failure(engine, "import('fs')") == (
        "script result is not JSON: a Promise (async scripts are not supported)"
    )


def test_engine_works_inside_a_running_event_loop() -> None:
    """Called from a coroutine, the engine still evaluates, times out and recovers."""

    async def evaluate() -> list[Any]:
        engine = ScriptEngine(timeout_ms=50)
        try:
            first = engine.javascript("$.x * 2", {"x": 4})
            with pytest.raises(ScriptError, match="longer than 50 ms"):
                engine.javascript("for (;;) {}", {})
            return [first, engine.javascript("'after'", {})]
        finally:
            engine.close()

    assert asyncio.run(evaluate()) == [8, "after"]


def test_closed_engine_starts_again(engine: ScriptEngine) -> None:
    """After close, the next evaluation creates a fresh isolate."""
    engine.close()
    assert engine.javascript("'again'", {}) == "again"


def test_limits_must_be_positive() -> None:
    """A zero time or memory limit is refused."""
    with pytest.raises(ValueError, match="positive"):
        ScriptEngine(timeout_ms=0)


# jq --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "data", "expected"),
    [
        (".a", {"a": 1}, [1]),
        ("[.items[] | .x]", {"items": [{"x": 1}, {"x": 2}]}, [[1, 2]]),
        (".items[] | {key: .x}", {"items": [{"x": 1}, {"x": 2}]}, [{"key": 1}, {"key": 2}]),
        (".a, .b", {"a": "é", "b": None}, ["é", None]),
        ("def double: . * 2; .n | double", {"n": 21}, [42]),
        ("empty", {}, []),
    ],
)
def test_jq_outputs(engine: ScriptEngine, query: str, data: Any, expected: list[Any]) -> None:
    """Every output of the query comes back, in order."""
    assert engine.jq(query, data) == expected


def test_jq_compile_error_names_the_problem(engine: ScriptEngine) -> None:
    """A query that does not compile says where, in the user's own coordinates."""
    with pytest.raises(ScriptError) as caught:
        engine.jq(".a |", {})
    assert str(caught.value) == (
        "jq query does not compile: syntax error, unexpected end of file at line 1, column 4"
    )


def test_jq_runtime_error_names_the_problem(engine: ScriptEngine) -> None:
    """A query that fails while running raises ScriptError with jq's message."""
    with pytest.raises(ScriptError) as caught:
        engine.jq(".a.b", {"a": "text"})
    assert str(caught.value) == 'jq query failed: Cannot index string with string ("b")'
    with pytest.raises(ScriptError, match="jq query failed: custom"):
        engine.jq('error("custom")', {})


def test_jq_cannot_read_the_environment(engine: ScriptEngine) -> None:
    """env and $ENV are empty, so definitions cannot read the process's secrets."""
    assert engine.jq("[env.HOME, $ENV.HOME, ($ENV | length)]", {}) == [[None, None, 0]]


def test_jq_endless_output_stops(engine: ScriptEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator without end fails after JQ_MAX_OUTPUTS outputs instead of filling memory."""
    monkeypatch.setattr(scripts, "JQ_MAX_OUTPUTS", 50)
    with pytest.raises(ScriptError, match="more than 50 outputs"):
        engine.jq("repeat(1)", {})
