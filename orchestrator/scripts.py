"""The script engine: Conductor's JavaScript expressions in embedded V8, and jq programs.

JavaScript serves INLINE tasks (``evaluatorType`` ``javascript`` or ``graaljs``), SWITCH with
``evaluatorType: javascript`` and DO_WHILE's ``loopCondition``; jq serves JSON_JQ_TRANSFORM.
Every failure raises :class:`~orchestrator.errors.ScriptError` with a one-line message.

Scripts may read the clock (``Date``) and randomness (``Math.random``), as Conductor allows.
That does not make replay diverge: the engine records every script result in the event log,
and replay folds the recorded results instead of running scripts again.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

import jq as jqlib
import orjson
from py_mini_racer import JSEvalException, JSOOMException, MiniRacer, PythonJSConvertedTypes

from orchestrator.errors import ScriptError

__all__ = ["ScriptEngine"]

#: A jq query that yields more outputs than this is a runaway generator such as ``repeat(.)``.
JQ_MAX_OUTPUTS = 100_000

_T = TypeVar("_T")
_MESSAGE_LIMIT = 300
_JQ_CACHE_SIZE = 512

# Runs once per isolate. It strips what scripts must not have: timers and finalizers (they
# would run code between evaluations) and binary buffers (their memory lies outside the V8 heap
# the limit measures, and filling one cannot be interrupted). It defines
# __orchestrator_run(source, bindingsJson), which puts the global object back as it was (so
# nothing one evaluation leaves there reaches the next), evaluates the source with `$` bound,
# and answers with one string whose first character says what happened: "=" a JSON value,
# "!" the script threw, "?" it does not parse, "~" its value is not JSON. Each run first
# counts itself in a shared buffer the prelude returns, which Python reads without waiting for
# the isolate (scripts cannot reach it).
_PRELUDE = r"""
(function (global) {
  'use strict';
  var runs = new Uint32Array(new SharedArrayBuffer(4));
  var removed = ['setTimeout', 'clearTimeout', '__timer_manager', 'WeakRef',
    'FinalizationRegistry', 'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Atomics',
    'WebAssembly', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
    'Uint16Array', 'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array',
    'Float64Array', 'BigInt64Array', 'BigUint64Array'];
  removed.forEach(function (name) {
    if (!Reflect.deleteProperty(global, name)) { global[name] = undefined; }
  });
  // Indirect eval makes a function whose only enclosing scope is the global one, so the
  // evaluated source sees `$` and globals, never this prelude's variables; `var`s declared by
  // the source live in the function's own scope and end with the call.
  var evaluate = (0, global.eval)('(function ($) { return eval(arguments[1]); })');
  var parse = JSON.parse, stringify = JSON.stringify, keys = Object.keys;
  var define = Object.defineProperty, is = Object.is, deleteProperty = Reflect.deleteProperty;
  var compile = Function, ErrorType = Error, SyntaxErrorType = SyntaxError;
  var PromiseType = Promise, text = String, apply = Reflect.apply, construct = Reflect.construct;

  // V8 aborts the whole process, heap limit or not, when one builtin call grows an array or
  // table past V8's own maximum, and nothing interrupts such a call midway. These guards refuse
  // up front the calls that start from more elements than the heap limit could hold. They
  // cover the builtins found to do it (Array(n).fill, Array.from({length: n}), split, ...),
  // not every path a determined script could find.
  var maxLength = MAX_LENGTH;
  function refuseLonger(length) {
    if (length > maxLength) {
      throw new RangeError(length + ' elements exceed the ' + maxLength + ' a script may use');
    }
  }
  function guard(owner, name, lengthOf) {
    var builtin = owner[name];
    var guarded = ({ [name]() {
      refuseLonger(lengthOf(this, arguments));
      return apply(builtin, this, arguments);
    } })[name];
    define(owner, name, { value: guarded });
  }
  function ownLength(self) { return self == null ? 0 : +self.length; }
  function firstLength(self, args) { return args[0] == null ? 0 : +args[0].length; }
  function stringLength(self, args) { return typeof args[0] === 'string' ? args[0].length : 0; }
  ['concat', 'copyWithin', 'fill', 'filter', 'flat', 'flatMap', 'join', 'map', 'reverse',
    'slice', 'sort', 'splice', 'toReversed', 'toSorted', 'toSpliced', 'with'
  ].forEach(function (name) { guard(Array.prototype, name, ownLength); });
  ['keys', 'values', 'entries'].forEach(function (name) { guard(Object, name, stringLength); });
  guard(String.prototype, 'split', ownLength);
  guard(Array, 'from', firstLength);
  guard(JSON, 'parse', firstLength);
  function arrayLength(args) {
    return args.length === 1 && typeof args[0] === 'number' ? args[0] : 0;
  }
  global.Array = new Proxy(Array, {
    apply: function (target, self, args) {
      refuseLonger(arrayLength(args));
      return apply(target, self, args);
    },
    construct: function (target, args, newTarget) {
      refuseLonger(arrayLength(args));
      return construct(target, args, newTarget);
    }
  });

  var names = Object.getOwnPropertyNames(global), descriptors = [];
  names.forEach(function (name) {
    var descriptor = Object.getOwnPropertyDescriptor(global, name);
    if ('value' in descriptor) { descriptors.push([name, descriptor]); }
  });

  function restore() {
    var added = keys(global);
    for (var i = 0; i < added.length; i++) { deleteProperty(global, added[i]); }
    for (var j = 0; j < descriptors.length; j++) {
      var name = descriptors[j][0], descriptor = descriptors[j][1];
      if (!is(global[name], descriptor.value)) {
        try { define(global, name, descriptor); } catch (ignored) { /* made unconfigurable */ }
      }
    }
  }

  function describe(error) {
    try {
      if (error instanceof ErrorType || typeof error === 'string') { return text(error); }
      var json = stringify(error);
      return json === undefined ? text(error) : json;
    } catch (ignored) {
      return 'a value that cannot be shown';
    }
  }

  // A SyntaxError from eval is the source's own when the source does not compile as a
  // function body either, or names what only a function body allows.
  function parses(error, source) {
    if (!(error instanceof SyntaxErrorType)) { return true; }
    if (error.message === 'Illegal return statement') { return false; }
    try { compile('$', source); return true; } catch (ignored) { return false; }
  }

  function run(source, bindings) {
    runs[0] += 1;
    restore();
    var value, json;
    try {
      value = evaluate(parse(bindings), source);
    } catch (error) {
      return (parses(error, source) ? '!' : '?') + describe(error);
    }
    try {
      if (value instanceof PromiseType) { return '~a Promise (async scripts are not supported)'; }
      json = stringify(value);
    } catch (error) {
      return '~' + describe(error);
    }
    return '=' + (json === undefined ? 'null' : json);
  }

  define(global, '__orchestrator_run', { value: run });
  return runs.buffer;
})(globalThis);
"""

_OUTCOMES = {
    "!": "script threw: ",
    "?": "script does not parse: ",
    "~": "script result is not JSON: ",
}

# Shadows jq's `env` and `$ENV`, which would hand the process environment (credentials
# included) to whoever writes a definition. It shares the query's first line so that line
# numbers in messages and in `$__loc__` stay the user's; columns on line 1 are corrected.
_JQ_PRELUDE = "def env: {}; {} as $ENV | "
_JQ_LOCATION = re.compile(r" at <top-level>, line (\d+), column (\d+)")


class ScriptEngine:
    """Evaluates JavaScript in a sandboxed V8 isolate, and jq programs.

    One V8 isolate is created lazily and reused, so an evaluation costs a few hundred
    microseconds. Each evaluation runs under a time limit (``timeout_ms``) and the isolate
    under a heap limit (``max_memory_bytes``); after either is hit, the isolate is discarded
    and a fresh one serves the next evaluation. Scripts see ECMAScript built-ins only: no file
    system, network, timers or host bridge; binary buffers are removed because their memory
    lies outside the heap the limit measures. ``var`` declarations and new globals do not
    outlive an evaluation, and overwritten globals are put back; changes made *inside*
    built-in objects (``Array.prototype.x = ...``) persist until the isolate is replaced.

    The heap limit is enforced where V8 checks for interrupts, so one builtin call can overshoot
    it; and V8 aborts the whole process when a builtin grows an array past V8's own maximum.
    Calls on arrays longer than the heap limit could hold (``Array(1e9).fill(0)``) are refused
    up front, but an in-process isolate cannot rule such aborts out: if definition authors are
    not trusted, run the engine in a process of its own.

    Code a script leaves to run after it returns (promise reactions, an async function after
    its first ``await``) runs between evaluations, outside any time limit. If it is still
    running when the next evaluation is due, that evaluation times out without having begun;
    the engine notices, replaces the isolate and evaluates it again, so only the delay is felt.

    jq programs run in-process through libjq without a time limit: a query that never ends
    without output (``until(false; .)``) blocks the caller. Queries that produce outputs
    without end stop after :data:`JQ_MAX_OUTPUTS`.

    Not thread-safe: use one engine from one thread at a time (one engine per processor).
    """

    def __init__(self, *, timeout_ms: int = 200, max_memory_bytes: int = 64 * 2**20) -> None:
        if timeout_ms <= 0 or max_memory_bytes <= 0:
            raise ValueError("timeout_ms and max_memory_bytes must be positive")
        self._timeout_ms = timeout_ms
        self._max_memory_bytes = max_memory_bytes
        self._sandbox: _Sandbox | None = None
        self._jq_programs: Callable[[str], Any] = lru_cache(maxsize=_JQ_CACHE_SIZE)(_compile_jq)

    def javascript(self, expression: str, bindings: Mapping[str, Any]) -> Any:
        """The JSON value of ``expression`` with ``$`` bound to ``bindings``.

        ``expression`` may be an expression, an immediately invoked function, or statements
        whose last expression statement gives the value. ``undefined``, functions, ``NaN``
        and infinities become ``None``. Raises ScriptError if the script throws, does not
        parse, runs out of time or memory, or yields a value JSON cannot hold.
        """
        code = f"__orchestrator_run({_js_string(expression)},{_js_string(_json(bindings))})"
        reply = self._evaluate(code)
        if not isinstance(reply, str) or not reply:
            raise ScriptError(f"script engine answered {reply!r}, not a result")
        if reply[0] == "=":
            return orjson.loads(reply[1:])
        raise ScriptError(_OUTCOMES[reply[0]] + _one_line(reply[1:]))

    def jq(self, query: str, data: Any) -> list[Any]:
        """Every output of the jq program ``query`` run over ``data``, in order.

        Raises ScriptError if the query does not compile, fails at run time, or produces
        more than :data:`JQ_MAX_OUTPUTS` outputs.
        """
        program = self._jq_programs(query)
        outputs: list[Any] = []
        try:
            for output in program.input_text(_json(data)):
                if len(outputs) == JQ_MAX_OUTPUTS:
                    raise ScriptError(f"jq query produced more than {JQ_MAX_OUTPUTS} outputs")
                outputs.append(output)
        except ValueError as exc:
            raise ScriptError(f"jq query failed: {_one_line(str(exc))}") from exc
        return outputs

    def close(self) -> None:
        """Release the V8 isolate; a later JavaScript evaluation creates a new one."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()

    def _evaluate(self, code: str, *, again: bool = True) -> PythonJSConvertedTypes:
        """The runner's reply to ``code``; raises ScriptError if V8 stopped it."""
        sandbox = self._sandbox or self._start()
        try:
            return sandbox.evaluate(code, self._timeout_ms / 1000)
        except TimeoutError as exc:
            began = sandbox.began_last()
            self._discard()
            if not began and again:
                # The time went to code an earlier script left running (see the class doc).
                return self._evaluate(code, again=False)
            raise ScriptError(f"script ran longer than {self._timeout_ms} ms") from exc
        except JSOOMException as exc:
            self._discard()
            raise ScriptError("script exceeded its memory limit") from exc
        except JSEvalException as exc:
            self._discard()
            raise ScriptError(f"script was stopped: {_one_line(str(exc))}") from exc

    def _start(self) -> _Sandbox:
        """A new isolate, kept for the evaluations that follow."""
        self._sandbox = _Sandbox(self._max_memory_bytes)
        return self._sandbox

    def _discard(self) -> None:
        """Drop the isolate; it is closed in the background so the caller never waits.

        V8 honours termination at its next interrupt check, so a stopped script can hold the
        isolate, and closing it, a little longer.
        """
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            threading.Thread(target=sandbox.close, name="script-engine-close", daemon=True).start()


class _Sandbox:
    """One V8 isolate with the prelude installed, driven by a private asyncio loop.

    mini-racer's synchronous ``eval`` hands each call to a loop thread of its own and back,
    four thread switches an evaluation; running its cancelable coroutine on a loop the caller
    drives takes two, and about halves the time an evaluation costs.
    """

    def __init__(self, max_memory_bytes: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._racer = self._run(self._new_racer(max_memory_bytes))
        # An array of more elements than the heap holds at 8 bytes each cannot be legitimate.
        runs = self._eval(_PRELUDE.replace("MAX_LENGTH", str(max_memory_bytes // 8)), None)
        if not isinstance(runs, memoryview):
            raise TypeError(f"the script prelude answered {runs!r}, not its run counter")
        self._runs = runs.cast("I")
        self._issued = 0

    def evaluate(self, code: str, timeout_s: float) -> PythonJSConvertedTypes:
        """The runner's reply to ``code``; TimeoutError once ``timeout_s`` passes."""
        self._issued += 1
        return self._eval(code, timeout_s)

    def began_last(self) -> bool:
        """Whether the runner began the last evaluation (it may have waited for the isolate)."""
        return bool(self._runs[0] == self._issued % 2**32)

    def close(self) -> None:
        """Free the isolate (this waits for a stopped script to finish stopping)."""
        self._racer.close()
        self._loop.close()

    @staticmethod
    async def _new_racer(max_memory_bytes: int) -> MiniRacer:
        # Created inside a coroutine, MiniRacer adopts the running loop (ours) as its own.
        racer = MiniRacer()
        racer.set_hard_memory_limit(max_memory_bytes)
        return racer

    def _eval(self, code: str, timeout_s: float | None) -> PythonJSConvertedTypes:
        """The value of ``code``; past ``timeout_s``, V8 is told to stop and TimeoutError raised."""
        return self._run(asyncio.wait_for(self._racer.eval_cancelable(code), timeout_s))

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` to completion on the private loop."""
        if _loop_running_here():
            # This thread already runs a loop and cannot run a second one; borrow a thread.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="script-engine") as pool:
                return pool.submit(self._loop.run_until_complete, coroutine).result()
        return self._loop.run_until_complete(coroutine)


def _loop_running_here() -> bool:
    """Whether the calling thread is inside a running asyncio loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _compile_jq(query: str) -> Any:
    """The compiled jq program for ``query``, with ``env`` and ``$ENV`` shadowed."""
    try:
        return jqlib.compile(_JQ_PRELUDE + query)
    except ValueError as exc:
        raise ScriptError(f"jq query does not compile: {_jq_compile_message(str(exc))}") from exc


def _jq_compile_message(message: str) -> str:
    """The first line of a libjq compile error, located in the user's query."""
    first = message.splitlines()[0] if message else "unknown error"
    first = first.removeprefix("jq: error: ").removesuffix(":")

    def locate(match: re.Match[str]) -> str:
        line, column = int(match[1]), int(match[2])
        if line == 1:
            column = max(column - len(_JQ_PRELUDE), 1)
        return f" at line {line}, column {column}"

    return _JQ_LOCATION.sub(locate, first)


def _json(value: Any) -> str:
    """``value`` as JSON text; ScriptError if it is not JSON data."""
    try:
        return orjson.dumps(value, default=_mapping_as_dict).decode()
    except orjson.JSONEncodeError as exc:
        raise ScriptError(f"script input is not JSON: {exc}") from exc


def _mapping_as_dict(value: Any) -> dict[str, Any]:
    """orjson's fallback: serialise any Mapping as an object."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _js_string(text: str) -> str:
    """A JavaScript string literal for ``text`` (JSON strings are valid JS literals)."""
    return orjson.dumps(text).decode()


def _one_line(text: str) -> str:
    """``text`` on one line, shortened to a readable length."""
    line = " ".join(text.split())
    return line if len(line) <= _MESSAGE_LIMIT else line[: _MESSAGE_LIMIT - 1] + "…"
