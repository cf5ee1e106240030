"""Avro single-object encoding of every record type, with schemas derived from the dataclasses.

A record on the wire is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer's schema + the Avro body, so a reader finds the schema with no registry server. JSON
fields (``Json`` in ``engine.records``) travel as strings marked ``"logicalType": "json"``.

Records written by an older version of a record type stay readable: the schemas they were
written with live in ``orchestrator/log/schema_history/`` (``<Name>.<fingerprint>.avsc``, saved
by ``python -m orchestrator.log.schemas`` whenever a schema changes), and such a record is read
with Avro schema resolution into today's type, new fields taking their defaults.
"""

from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
from collections.abc import Callable, Iterable
from enum import StrEnum
from importlib import resources
from typing import Any, Union

import orjson
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from orchestrator.engine import records
from orchestrator.errors import DecodeError, SchemaError, UnknownSchemaError

Json = Any
MAGIC = b"\xc3\x01"
NAMESPACE = "orch"


def _is_json(hint: Any) -> bool:
    return hint is Any


def _avro_type(hint: Any, owner: str, name: str) -> Json:
    if _is_json(hint):
        return {"type": "string", "logicalType": "json"}
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) != 1:
            raise SchemaError(f"{owner}.{name}: only 'X | None' unions are supported")
        return ["null", _avro_type(members[0], owner, name)]
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return {"type": "enum", "name": hint.__name__, "symbols": [m.value for m in hint]}
    simple = {str: "string", int: "long", bool: "boolean", float: "double", bytes: "bytes"}
    if hint in simple:
        return simple[hint]
    raise SchemaError(f"{owner}.{name}: no Avro type for {hint!r}")


def _default(field: dataclasses.Field[Any], hint: Any) -> tuple[bool, Json]:
    if field.default is dataclasses.MISSING:
        return False, None
    if _is_json(hint):
        return True, orjson.dumps(field.default).decode()
    return True, field.default


def schema_for(cls: type) -> dict[str, Json]:
    """The Avro record schema of a record dataclass."""
    hints = typing.get_type_hints(cls)
    fields = []
    for field in dataclasses.fields(cls):
        entry: dict[str, Json] = {
            "name": field.name,
            "type": _avro_type(hints[field.name], cls.__name__, field.name),
        }
        has_default, default = _default(field, hints[field.name])
        if has_default:
            entry["default"] = default
        fields.append(entry)
    return {
        "type": "record",
        "name": cls.__name__,
        "namespace": NAMESPACE,
        "doc": (cls.__doc__ or "").strip(),
        "fields": fields,
    }


def schema_fingerprint(parsed: Json) -> bytes:
    """The 8 fingerprint bytes of a parsed schema, in the order the encoding writes them."""
    # fastavro prints the CRC-64-AVRO fingerprint little-endian, as the encoding wants it.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def historical_schemas() -> list[dict[str, Json]]:
    """The schemas older versions of the record types were written with."""
    folder = resources.files("orchestrator.log").joinpath("schema_history")
    return [
        json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".avsc")
    ]


class _RecordType:
    """Everything the codec needs about one record class."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.schema = schema_for(cls)
        self.parsed = parse_schema(self.schema)
        digest = schema_fingerprint(self.parsed)
        self.fingerprint = int.from_bytes(digest, "little")
        self.prefix = MAGIC + digest
        hints = typing.get_type_hints(cls)
        self.fields = tuple(field.name for field in dataclasses.fields(cls))
        self.json_fields = frozenset(n for n in self.fields if _is_json(hints[n]))
        self.converters: dict[str, Callable[[Any], Any]] = {}
        for name in self.fields:
            hint = hints[name]
            for member in typing.get_args(hint) or (hint,):
                if isinstance(member, type) and issubclass(member, StrEnum):
                    self.converters[name] = member


class RecordCodec:
    """Encodes and decodes the records of ``engine.records`` in Avro single-object encoding."""

    def __init__(self, classes: Iterable[type]) -> None:
        self._by_class: dict[type, _RecordType] = {}
        self._by_fingerprint: dict[int, _RecordType] = {}
        self._writers: dict[int, Json] = {}  # fingerprint -> an older writer schema, parsed
        for cls in classes:
            record_type = _RecordType(cls)
            self._by_class[cls] = record_type
            self._by_fingerprint[record_type.fingerprint] = record_type
        by_name = {rt.name: rt for rt in self._by_class.values()}
        for schema in historical_schemas():
            today = by_name.get(schema["name"])
            if today is None:
                continue  # a record type that no longer exists
            parsed = parse_schema(schema)
            old = int.from_bytes(schema_fingerprint(parsed), "little")
            if old != today.fingerprint:
                self._by_fingerprint[old] = today
                self._writers[old] = parsed

    def schemas(self) -> dict[str, dict[str, Json]]:
        """Every record's Avro schema by record name."""
        return {rt.name: rt.schema for rt in self._by_class.values()}

    def encode(self, record: Any) -> bytes:
        """Single-object encoding of ``record``."""
        record_type = self._by_class.get(type(record))
        if record_type is None:
            raise SchemaError(f"{type(record).__name__} is not a record type of the codec")
        datum = {}
        for name in record_type.fields:
            value = getattr(record, name)
            datum[name] = orjson.dumps(value).decode() if name in record_type.json_fields else value
        buffer = io.BytesIO()
        buffer.write(record_type.prefix)
        schemaless_writer(buffer, record_type.parsed, datum)
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> Any:
        """The record encoded in ``data``; raises DecodeError naming what is wrong."""
        if not data or len(data) < 10 or data[:2] != MAGIC:
            raise DecodeError("not an Avro single-object record (missing C3 01 marker)")
        fingerprint = int.from_bytes(data[2:10], "little")
        record_type = self._by_fingerprint.get(fingerprint)
        if record_type is None:
            raise UnknownSchemaError(f"unknown schema fingerprint {fingerprint:016x}")
        body = io.BytesIO(data[10:])
        try:
            writer = self._writers.get(fingerprint, record_type.parsed)
            reader = record_type.parsed if writer is not record_type.parsed else None
            datum: dict[str, Any] = schemaless_reader(  # type: ignore[assignment]
                body, writer, reader
            )
            if body.tell() != len(data) - 10:
                raise ValueError(f"{len(data) - 10 - body.tell()} bytes left after the record")
            for name in record_type.json_fields:
                datum[name] = orjson.loads(datum[name])
            for name, convert in record_type.converters.items():
                if datum[name] is not None:
                    datum[name] = convert(datum[name])
            return record_type.cls(**datum)
        except (EOFError, IndexError, ValueError, TypeError, KeyError) as exc:
            detail = str(exc) or type(exc).__name__
            raise DecodeError(f"corrupt {record_type.name} record: {detail}") from exc

    def type_name(self, record: Any) -> str:
        """The record type name, for the ``type`` header."""
        return type(record).__name__


CODEC = RecordCodec(
    (
        *records.INPUT_TYPES,
        records.ExecuteTask,
        records.WorkflowDefinition,
        records.TaskDefinition,
        records.DeadLetter,
        *records.EVENT_TYPES,
    )
)
