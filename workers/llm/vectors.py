"""Vector stores behind LLM_INDEX and LLM_SEARCH: a protocol, an in-memory one and a JSON-file one.

To plug in a real vector database, implement :class:`VectorStore` and hand it to
:class:`workers.llm.LlmWorker` (``LlmWorker(store=MyStore())``). The contract:

- ``add(index, documents)`` stores each :class:`Document` under ``index``, creating the index on
  first use. A document whose ``id`` is already there replaces it: workers run at least once,
  so the same documents may arrive twice and must not be stored twice.
- ``search(index, vector, k)`` returns up to ``k`` :class:`Hit` s, highest cosine similarity
  first (ties by id), and raises :class:`IndexNotFoundError` for an index nothing was added to.
- Vectors of another length than the index's raise :class:`VectorStoreError`; so do index
  names outside ``[A-Za-z0-9][A-Za-z0-9_.-]{0,127}``.
- Both are called from worker threads at once, so they must be thread-safe.

:class:`JsonVectorStore` keeps one JSON file per index in a directory and does exact cosine
similarity in pure Python: right for thousands of documents on one worker host, not millions
across many (each worker host has its own directory).
"""

from __future__ import annotations

import heapq
import math
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from workers.llm.errors import IndexNotFoundError, VectorStoreError

__all__ = ["Document", "Hit", "JsonVectorStore", "MemoryVectorStore", "VectorStore", "cosine"]

Json = Any
_INDEX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True, slots=True)
class Document:
    """A text to find again, with its embedding and free-form metadata."""

    id: str
    text: str
    vector: Sequence[float]
    metadata: dict[str, Json]


@dataclass(frozen=True, slots=True)
class Hit:
    """A document a search found, with its cosine similarity to the query (-1 to 1)."""

    id: str
    text: str
    score: float
    metadata: dict[str, Json]


class VectorStore(Protocol):
    """Where LLM_INDEX puts documents and LLM_SEARCH finds them (see the module docstring)."""

    def add(self, index: str, documents: Sequence[Document]) -> None:
        """Store (or replace, by id) ``documents`` in ``index``."""

    def search(self, index: str, vector: Sequence[float], k: int) -> list[Hit]:
        """The ``k`` documents of ``index`` most similar to ``vector``, best first."""


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine similarity of two vectors of the same length (0 when either is all zeros)."""
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [0.0 for _ in vector]


class MemoryVectorStore:
    """A :class:`VectorStore` in a dict: for tests and single-process experiments."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # index -> id -> document, with each vector stored as a unit vector
        self._indexes: dict[str, dict[str, Document]] = {}

    def add(self, index: str, documents: Sequence[Document]) -> None:
        """Store (or replace, by id) ``documents`` in ``index``."""
        _check_name(index)
        with self._lock:
            self._indexes[index] = _merged(index, self._load(index), documents)
            self._save(index, self._indexes[index])

    def search(self, index: str, vector: Sequence[float], k: int) -> list[Hit]:
        """The ``k`` documents of ``index`` most similar to ``vector``, best first."""
        _check_name(index)
        with self._lock:
            entries = self._load(index)
        if entries is None:
            raise IndexNotFoundError(f"no index named {index!r}: LLM_INDEX creates it")
        query = _unit(vector)
        _check_dimensions(index, entries, len(query))
        hits = (
            Hit(
                doc.id,
                doc.text,
                math.fsum(x * y for x, y in zip(query, doc.vector, strict=True)),
                doc.metadata,
            )
            for doc in entries.values()
        )
        return heapq.nsmallest(k, hits, key=lambda hit: (-hit.score, hit.id))

    def _load(self, index: str) -> dict[str, Document] | None:
        return self._indexes.get(index)

    def _save(self, index: str, entries: dict[str, Document]) -> None:
        """Nothing to persist in memory; :class:`JsonVectorStore` writes a file."""


class JsonVectorStore(MemoryVectorStore):
    """A :class:`VectorStore` of one JSON file per index under ``directory``.

    Each ``add`` rewrites the index's file atomically (a temporary file, then a rename), and a
    search reloads the file when another process changed it. Writers in several processes
    over one directory may lose each other's additions: give each worker process its own.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self._stamps: dict[str, tuple[int, int]] = {}

    def _load(self, index: str) -> dict[str, Document] | None:
        path = self._path(index)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._stamps.get(index) != stamp or index not in self._indexes:
            self._indexes[index] = _decoded(path)
            self._stamps[index] = stamp
        return self._indexes[index]

    def _save(self, index: str, entries: dict[str, Document]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(index)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        documents = [
            {"id": d.id, "text": d.text, "metadata": d.metadata, "vector": list(d.vector)}
            for d in entries.values()
        ]
        temporary.write_bytes(orjson.dumps({"version": 1, "documents": documents}))
        os.replace(temporary, path)
        stat = path.stat()
        self._stamps[index] = (stat.st_mtime_ns, stat.st_size)

    def _path(self, index: str) -> Path:
        return self.directory / f"{index}.json"


def _merged(
    index: str, existing: dict[str, Document] | None, documents: Sequence[Document]
) -> dict[str, Document]:
    # A new dict every time: a search iterates the one it got without holding the lock.
    entries = dict(existing or {})
    for doc in documents:
        entries[doc.id] = Document(doc.id, doc.text, _unit(doc.vector), doc.metadata)
    sizes = {len(doc.vector) for doc in entries.values()}
    if len(sizes) > 1:
        raise VectorStoreError(
            f"index {index!r} would mix vectors of {sorted(sizes)} dimensions; "
            "index with the same embedding model (and dimensions) every time"
        )
    return entries


def _check_dimensions(index: str, entries: dict[str, Document], size: int) -> None:
    stored = next((len(doc.vector) for doc in entries.values()), size)
    if stored != size:
        raise VectorStoreError(
            f"index {index!r} holds {stored}-dimensional vectors, the query has {size}; "
            "search with the embedding model the index was built with"
        )


def _check_name(index: str) -> None:
    if not _INDEX_NAME.fullmatch(index):
        raise VectorStoreError(
            f"index name {index!r} must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}"
        )


def _decoded(path: Path) -> dict[str, Document]:
    try:
        data = orjson.loads(path.read_bytes())
        return {
            item["id"]: Document(item["id"], item["text"], item["vector"], item["metadata"])
            for item in data["documents"]
        }
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise VectorStoreError(f"cannot read the vector index {path}: {exc}") from exc
