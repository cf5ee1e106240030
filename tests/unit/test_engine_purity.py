"""engine/ stays pure: no Kafka, RocksDB, Avro, HTTP, clock, ids, randomness, OS or threads.

The check reads the source (ast) of every module under ``orchestrator/engine/`` and of every
project module they import (with the packages' ``__init__`` modules Python runs on the way), so
a forbidden import cannot hide behind a helper in ``dsl/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import orchestrator

PACKAGE_ROOT = Path(orchestrator.__file__).resolve().parent
ENGINE = PACKAGE_ROOT / "engine"

FORBIDDEN_MODULES = frozenset(
    {
        "confluent_kafka",
        "rocksdict",
        "fastavro",
        "httpx",
        "requests",
        "socket",
        "time",
        "datetime",
        "uuid",
        "random",
        "os",
        "threading",
        "asyncio",
    }
)
FORBIDDEN_PROJECT_PACKAGES = (
    "orchestrator.log",
    "orchestrator.processor",
    "orchestrator.client",
    "orchestrator.worker",
)
DYNAMIC_IMPORTS = frozenset({"__import__", "import_module"})


def module_name(path: Path) -> str:
    """The dotted module name of a file under the orchestrator package."""
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(source: str, package: str) -> list[tuple[int, str]]:
    """Every module ``source`` imports, made absolute against ``package``, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module the project file ``path`` imports, absolute, with its line."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def dynamic_imports(path: Path) -> list[int]:
    """Lines of ``path`` that call ``__import__`` or ``importlib.import_module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in DYNAMIC_IMPORTS:
                lines.append(node.lineno)
    return lines


def forbidden(module: str) -> bool:
    """Whether importing ``module`` breaks the engine's purity."""
    if module.partition(".")[0] in FORBIDDEN_MODULES:
        return True
    return any(module == p or module.startswith(p + ".") for p in FORBIDDEN_PROJECT_PACKAGES)


def source_of(module: str) -> Path | None:
    """The file of a project module, or None for third-party and standard-library modules."""
    if module != "orchestrator" and not module.startswith("orchestrator."):
        return None
    relative = Path(*module.split("."))
    for candidate in (relative.with_suffix(".py"), relative / "__init__.py"):
        path = PACKAGE_ROOT.parent / candidate
        if path.is_file():
            return path
    return None


def reachable_from_engine() -> dict[Path, str]:
    """Every project module the engine imports, directly or through other project modules.

    Values say how each was reached, for the failure message.
    """
    reached: dict[Path, str] = dict.fromkeys(sorted(ENGINE.rglob("*.py")), "engine")
    queue = list(reached)
    while queue:
        path = queue.pop()
        for _, module in imported_modules(path):
            if forbidden(module):
                continue
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):
                target = source_of(".".join(parts[:depth]))
                if target is not None and target not in reached:
                    reached[target] = f"imported by {module_name(path)}"
                    queue.append(target)
    return reached


def violations() -> list[str]:
    """One line per forbidden import reachable from the engine."""
    problems: list[str] = []
    for path, how in reachable_from_engine().items():
        where = path.relative_to(PACKAGE_ROOT.parent)
        problems.extend(
            f"{where}:{line} imports {module} ({how})"
            for line, module in imported_modules(path)
            if forbidden(module)
        )
        problems.extend(
            f"{where}:{line} imports dynamically ({how})" for line in dynamic_imports(path)
        )
    return problems


def test_engine_modules_exist() -> None:
    """The check has something to check: decide, evolve, records and state are engine modules."""
    names = {p.stem for p in ENGINE.glob("*.py")}
    assert {"decide", "evolve", "records", "state"} <= names


def test_engine_imports_nothing_impure() -> None:
    """No engine module (or project module it reaches) imports I/O, clock, ids or randomness."""
    problems = violations()
    assert not problems, "engine/ must stay pure:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import os.path",
        "from datetime import datetime",
        "from uuid import uuid4",
        "import confluent_kafka as ck",
        "from orchestrator.log.codec import CODEC",
        "from orchestrator.processor import store",
        "from orchestrator import client",
        "from ..log import codec",
        "from .. import worker",
    ],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    """The import reader flags each kind of forbidden import, relative ones included."""
    found = imports_in(source, "orchestrator.engine")
    assert any(forbidden(module) for _, module in found), found


@pytest.mark.parametrize(
    "source",
    [
        "import dataclasses",
        "from typing import Any",
        "from orchestrator.dsl import resolve",
        "from .records import Event",
        "import timeit",
    ],
)
def test_checker_allows_pure_imports(source: str) -> None:
    """Pure standard modules, the DSL and sibling engine modules are allowed."""
    found = imports_in(source, "orchestrator.engine")
    assert not any(forbidden(module) for _, module in found), found


def test_checker_catches_dynamic_imports(tmp_path: Path) -> None:
    """__import__ and importlib.import_module calls are flagged."""
    path = tmp_path / "fake.py"
    path.write_text('__import__("time")\nimportlib.import_module("os")\n', encoding="utf-8")
    assert dynamic_imports(path) == [1, 2]


def test_reachable_modules_include_the_dsl() -> None:
    """The walk follows project imports: the DSL the engine uses is checked too."""
    reached = {module_name(path) for path in reachable_from_engine()}
    assert {"orchestrator", "orchestrator.dsl", "orchestrator.dsl.expressions"} <= reached
