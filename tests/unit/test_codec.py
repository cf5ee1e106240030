"""The Avro single-object codec: round trips, the wire prefix, and clear errors on bad bytes."""

from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
from enum import StrEnum
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine import records
from orchestrator.engine.records import ResultStatus, TaskResult, WorkflowCompleted
from orchestrator.errors import DecodeError, SchemaError, UnknownSchemaError
from orchestrator.log.codec import CODEC, MAGIC, historical_schemas, schema_fingerprint, schema_for

RECORD_TYPES: tuple[type, ...] = (
    *records.INPUT_TYPES,
    records.ExecuteTask,
    records.WorkflowDefinition,
    records.TaskDefinition,
    records.DeadLetter,
    *records.EVENT_TYPES,
)
SAMPLE = TaskResult(
    workflow_id="wf-ü",
    task_id="charge",
    attempt=2,
    status=ResultStatus.FAILED,
    output={"nested": [1, {"x": None}], "ключ": "値"},
    reason="declined",
)

# Strategies -------------------------------------------------------------------------------------

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        INT64,
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=12,
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values of one record field's type: JSON for ``Json``, unicode text, 64-bit ints."""
    if hint is Any:
        return json_values
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (member,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return st.none() | strategy_for(member)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return st.sampled_from(list(hint))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(),
        int: INT64,
        bool: st.booleans(),
        bytes: st.binary(max_size=64),
    }
    return simple[hint]


def instances(cls: type) -> st.SearchStrategy[Any]:
    """Instances of a record class with every field drawn from its type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


def minimal(cls: type) -> Any:
    """A fixed instance of a record class: every required field set to a small value."""
    hints = typing.get_type_hints(cls)
    plain: dict[Any, Any] = {str: "x", int: 1, bool: True, bytes: b"x"}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            continue
        hint = hints[f.name]
        if isinstance(hint, type) and issubclass(hint, StrEnum):
            values[f.name] = next(iter(hint))
        else:
            values[f.name] = plain.get(hint)
    return cls(**values)


# Round trips ------------------------------------------------------------------------------------


def test_codec_knows_every_record_type() -> None:
    """The codec has a schema for every request, result, command, definition and event type."""
    assert set(CODEC.schemas()) == {cls.__name__ for cls in RECORD_TYPES}


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_record_type_round_trips(cls: type, data: st.DataObject) -> None:
    """decode(encode(r)) == r for every record type, with unicode text and nested JSON."""
    record = data.draw(instances(cls))
    assert CODEC.decode(CODEC.encode(record)) == record


def test_decoded_enum_is_the_enum_type() -> None:
    """An enum field decodes to its StrEnum member, not a bare string."""
    decoded = CODEC.decode(CODEC.encode(SAMPLE))
    assert decoded.status is ResultStatus.FAILED


def test_json_field_travels_as_json_text() -> None:
    """A JSON field is stored as a string holding its JSON text, marked logicalType json."""
    output = next(f for f in schema_for(TaskResult)["fields"] if f["name"] == "output")
    assert output["type"] == {"type": "string", "logicalType": "json"}
    assert output["default"] == "null"
    encoded = CODEC.encode(SAMPLE)
    assert json.dumps(SAMPLE.output, ensure_ascii=False, separators=(",", ":")).encode() in encoded


def test_encode_unknown_type_raises_schema_error() -> None:
    """Encoding an object that is not a record type of the codec names its type."""
    with pytest.raises(SchemaError, match="dict is not a record type of the codec"):
        CODEC.encode({"workflow_id": "w"})


# The wire prefix and the fingerprint ------------------------------------------------------------

CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification writes it out (the reference for the codec)."""
    fp = CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


def fastavro_fingerprint(schema: Any) -> int:
    """The fingerprint the way the codec computes it: fastavro's hex digest, read little-endian."""
    digest = fingerprint(to_parsing_canonical_form(parse_schema(schema)), "CRC-64-AVRO")
    return int.from_bytes(bytes.fromhex(digest), "little")


def test_fingerprint_matches_the_avro_spec_vector() -> None:
    """CRC-64-AVRO of the schema "null" is 0x63dd24e7cc258f8a, via fastavro as the codec uses it."""
    assert crc64_avro(b'"null"') == 0x63DD24E7CC258F8A
    assert fastavro_fingerprint("null") == 0x63DD24E7CC258F8A


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda cls: cls.__name__)
def test_prefix_is_marker_and_little_endian_fingerprint(cls: type) -> None:
    """Every encoding starts with C3 01 and the little-endian CRC-64-AVRO of its schema."""
    record = minimal(cls)
    encoded = CODEC.encode(record)
    canonical = to_parsing_canonical_form(parse_schema(schema_for(cls)))
    expected = crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert encoded[:2] == MAGIC == b"\xc3\x01"
    assert encoded[2:10] == expected
    assert fastavro_fingerprint(schema_for(cls)).to_bytes(8, "little") == expected


def test_fingerprints_are_distinct() -> None:
    """No two record types share a fingerprint, so the prefix alone picks the schema."""
    prefixes = {CODEC.encode(minimal(cls))[:10] for cls in RECORD_TYPES}
    assert len(prefixes) == len(RECORD_TYPES)


def test_docs_do_not_change_the_fingerprint() -> None:
    """Editing a docstring changes the .avsc text but not the fingerprint on the wire."""
    schema = schema_for(TaskResult)
    assert fastavro_fingerprint({**schema, "doc": "another text"}) == fastavro_fingerprint(schema)


# Bad bytes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [None, b"", b"\xc3", b"\xc3\x01", b"\xc3\x01\x00\x01\x02", b'{"json": true}', b"\x00" * 20],
    ids=["none", "empty", "marker-half", "marker-only", "short-fingerprint", "json", "zeros"],
)
def test_not_single_object_encoding_raises_decode_error(data: bytes | None) -> None:
    """Bytes without the C3 01 marker and a full fingerprint raise DecodeError saying so."""
    with pytest.raises(DecodeError, match="not an Avro single-object record"):
        CODEC.decode(data)


def test_unknown_fingerprint_raises_unknown_schema_error() -> None:
    """A prefix naming no known schema raises UnknownSchemaError showing the fingerprint."""
    data = MAGIC + bytes.fromhex("0123456789abcdef") + b"\x02x"
    with pytest.raises(UnknownSchemaError, match="unknown schema fingerprint efcdab8967452301"):
        CODEC.decode(data)


def test_unknown_schema_error_is_a_schema_error() -> None:
    """UnknownSchemaError and DecodeError share SchemaError, so callers can catch either."""
    assert issubclass(UnknownSchemaError, SchemaError)
    assert issubclass(DecodeError, SchemaError)


def test_truncated_body_raises_decode_error_naming_the_type() -> None:
    """Every cut of a record's body (at byte boundaries of single-byte values) is a DecodeError."""
    encoded = CODEC.encode(SAMPLE)
    for end in range(10, len(encoded)):
        with pytest.raises(DecodeError, match="corrupt TaskResult record"):
            CODEC.decode(encoded[:end])


def test_invalid_json_in_a_json_field_raises_decode_error() -> None:
    """A JSON field whose text is not JSON is a DecodeError, not an orjson error."""
    record = records.WorkflowTerminated(workflow_id="w", seq=1, at=1, reason="r", output="x")
    encoded = CODEC.encode(record)
    assert encoded.endswith(b'\x06"x"')
    with pytest.raises(DecodeError, match="corrupt WorkflowTerminated record"):
        CODEC.decode(encoded[:-4] + b"\x06{x}")


def in_progress_result_with_status_byte(index_byte: int) -> bytes:
    """An encoded TaskResult whose status enum index byte is replaced by ``index_byte``."""
    record = TaskResult(workflow_id="w", task_id="t", attempt=1, status=ResultStatus.IN_PROGRESS)
    encoded = bytearray(CODEC.encode(record))
    # body: workflow_id "w" (02 77), task_id "t" (02 74), attempt 1 (02), status index 0 (00)
    assert encoded[10:16] == b"\x02w\x02t\x02\x00"
    encoded[15] = index_byte
    return bytes(encoded)


def test_enum_index_beyond_symbols_raises_decode_error() -> None:
    """An enum index past the last symbol is a DecodeError."""
    with pytest.raises(DecodeError, match="corrupt TaskResult record"):
        CODEC.decode(in_progress_result_with_status_byte(0x7E))  # index 63


@pytest.mark.xfail(
    strict=True,
    raises=pytest.fail.Exception,
    reason="fastavro indexes the symbol list with the decoded (zigzag) index as is, so a "
    "negative index picks a symbol from the end: corrupt bytes decode to a valid-looking "
    "TaskResult with status FAILED_WITH_TERMINAL_ERROR; log/codec does not check the range",
)
def test_negative_enum_index_raises_decode_error() -> None:
    """A negative enum index is a DecodeError, not the last symbol."""
    with pytest.raises(DecodeError, match="corrupt TaskResult record"):
        CODEC.decode(in_progress_result_with_status_byte(0x01))  # index -1


def test_truncated_varint_raises_decode_error() -> None:
    """A record cut inside a multi-byte varint is a DecodeError like any other truncation."""
    record = records.WorkflowTerminated(workflow_id="w", seq=300, at=1, reason="r")
    encoded = CODEC.encode(record)
    # body: workflow_id "w" (02 77), then seq 300 as the two-byte zigzag varint d8 04.
    assert encoded[10:14] == b"\x02w\xd8\x04"
    with pytest.raises(DecodeError):
        CODEC.decode(encoded[:13])


def test_out_of_range_union_branch_raises_decode_error() -> None:
    """A union branch index the schema does not have is a DecodeError."""
    record = records.DeadLetter(
        key=None, source_topic="t", source_partition=0, source_offset=0, reason="r"
    )
    encoded = bytearray(CODEC.encode(record))
    assert encoded[10] == 0x00  # key: union branch 0 (null)
    encoded[10] = 0x08  # branch 4 of a two-branch union
    with pytest.raises(DecodeError):
        CODEC.decode(bytes(encoded))


def test_trailing_bytes_raise_decode_error() -> None:
    """Bytes left over after the record's body mean the data is not that record."""
    with pytest.raises(DecodeError):
        CODEC.decode(CODEC.encode(SAMPLE) + b"\x00garbage")


@settings(max_examples=300, deadline=None, report_multiple_bugs=False)
@given(cls=st.sampled_from(RECORD_TYPES), body=st.binary(max_size=48))
def test_garbage_body_raises_only_decode_error(cls: type, body: bytes) -> None:
    """Random bytes behind a known prefix decode to a record or raise DecodeError, nothing else."""
    prefix = CODEC.encode(minimal(cls))[:10]
    message = f"corrupt {cls.__name__} record"
    try:
        CODEC.decode(prefix + body)
    except DecodeError as exc:
        error = str(exc)
    else:
        return
    assert error.startswith(message), error


def test_records_written_with_an_older_schema_are_read_into_todays_type() -> None:
    """A WorkflowCompleted written before it had continued_as decodes, with the default."""
    [old] = [s for s in historical_schemas() if s["name"] == "WorkflowCompleted"]
    assert "continued_as" not in {f["name"] for f in old["fields"]}
    parsed = parse_schema(old)
    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + schema_fingerprint(parsed))
    schemaless_writer(buffer, parsed, {"workflow_id": "w1", "seq": 7, "at": 9, "output": '{"a":1}'})
    record = CODEC.decode(buffer.getvalue())
    assert record == WorkflowCompleted(workflow_id="w1", seq=7, at=9, output={"a": 1})
    assert record.continued_as is None
    assert CODEC.decode(CODEC.encode(record)) == record


def test_every_historical_schema_belongs_to_a_record_type_and_differs_from_today() -> None:
    """schema_history holds only superseded schemas of record types the codec knows."""
    current = {name: schema_fingerprint(parse_schema(s)) for name, s in CODEC.schemas().items()}
    for old in historical_schemas():
        assert old["name"] in current
        assert schema_fingerprint(parse_schema(old)) != current[old["name"]]
