"""Conductor's input expressions: ``${workflow.input.x}``, ``${ref.output.a.b[0]}``.

A string that is exactly one expression resolves to the value it names (any JSON type); an
expression inside a longer string is replaced by the value's text. A path that names nothing
resolves to ``None``, as in Conductor. Simple dotted and indexed paths are walked directly;
anything else (wildcards, filters, ``..``) is evaluated as JSONPath.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import orjson
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as jsonpath_parse  # type: ignore[attr-defined]

from orchestrator.errors import ExpressionError

Json = Any
Step = str | int

_EXPRESSION = re.compile(r"\$\{([^{}]+)\}")
_SIMPLE_PATH = re.compile(r"^[A-Za-z_][\w\-]*(?:\.[\w\-]+|\[\d+\])*$")
_STEP = re.compile(r"\.?([\w\-]+)|\[(\d+)\]")


class Path:
    """A compiled expression path, evaluated against a context document."""

    __slots__ = ("_jsonpath", "indefinite", "root", "steps", "text")

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self._jsonpath: Any = None
        if _SIMPLE_PATH.match(self.text):
            self.steps: tuple[Step, ...] = tuple(
                int(index) if index else name for name, index in _STEP.findall(self.text)
            )
        else:
            self.steps = ()
            try:
                self._jsonpath = jsonpath_parse("$." + self.text)
            except (JsonPathParserError, Exception) as exc:
                raise ExpressionError(f"cannot parse expression ${{{self.text}}}: {exc}") from exc
        self.root = self.text.split(".", 1)[0].split("[", 1)[0]
        # JSONPath that can match many nodes (wildcards, filters, deep scan, slices) is a list.
        self.indefinite = any(token in self.text for token in ("*", "..", "?(", ":"))

    def evaluate(self, context: Mapping[str, Json]) -> Json:
        """The value this path names in ``context``, or ``None``."""
        if self._jsonpath is not None:
            matches = [match.value for match in self._jsonpath.find(context)]
            if self.indefinite:
                return matches
            return matches[0] if matches else None
        value: Json = context
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return None
                value = value[step]
            elif isinstance(value, Mapping):
                value = value.get(step)
            else:
                return None
        return value


@lru_cache(maxsize=8192)
def compile_path(text: str) -> Path:
    """The compiled form of one ``${...}`` body; raises ExpressionError if it does not parse."""
    return Path(text)


@lru_cache(maxsize=8192)
def _whole(text: str) -> Path | None:
    """The path of a string that is exactly one expression, else None."""
    whole = _EXPRESSION.fullmatch(text)
    return compile_path(whole.group(1)) if whole else None


def _as_text(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def resolve(template: Json, context: Mapping[str, Json]) -> Json:
    """Replace every expression in ``template`` (any JSON) with its value in ``context``."""
    if isinstance(template, str):
        if "${" not in template:
            return template
        whole = _whole(template)
        if whole is not None:
            return whole.evaluate(context)
        return _EXPRESSION.sub(
            lambda m: _as_text(compile_path(m.group(1)).evaluate(context)), template
        )
    if isinstance(template, dict):
        return {key: resolve(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [resolve(value, context) for value in template]
    return template


def expressions(template: Json, where: str = "") -> Iterator[tuple[str, Path]]:
    """Every compiled expression in ``template`` with the JSON path where it appears."""
    if isinstance(template, str) and "${" in template:
        for match in _EXPRESSION.finditer(template):
            try:
                yield where, compile_path(match.group(1))
            except ExpressionError as exc:
                raise ExpressionError(exc.detail, path=where) from exc
    elif isinstance(template, dict):
        for key, value in template.items():
            yield from expressions(value, f"{where}.{key}" if where else str(key))
    elif isinstance(template, list):
        for index, value in enumerate(template):
            yield from expressions(value, f"{where}[{index}]")
