"""Writes testdata/values/vectors.json: the value vectors both test suites check.

Each valid vector is a value in *tagged JSON* (kinds spelled out, so JSON's own
number model cannot blur int and float) and the exact bytes of its Value message.
The bytes are built here from protobuf messages directly, not through either
language's codec, so the codecs are checked against an independent reference.
Invalid vectors are bytes that must be rejected, with the expected error reason.

Tagged JSON:
  {"null": null}  {"bool": true}  {"int": "123"}  {"float": "1.5" | "NaN" | "-0" | "Infinity"}
  {"string": "..."}  {"bytes": "<hex>"}  {"list": [...]}  {"map": [["key", <tagged>], ...]}
  {"tensor": {"dtype": "float32", "shape": [2, 3], "data": "<hex>"}}
  {"timestamp": {"seconds": "<int>", "nanos": <int>}}

Run: .venv/bin/python testdata/values/generate.py   (tests fail if the output changes)
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

from toolbridge.v1 import values_pb2 as pb

HERE = Path(__file__).resolve().parent

DTYPES = {
    "bool": (pb.DTYPE_BOOL, "?"),
    "int8": (pb.DTYPE_INT8, "b"),
    "int16": (pb.DTYPE_INT16, "h"),
    "int32": (pb.DTYPE_INT32, "i"),
    "int64": (pb.DTYPE_INT64, "q"),
    "uint8": (pb.DTYPE_UINT8, "B"),
    "uint16": (pb.DTYPE_UINT16, "H"),
    "uint32": (pb.DTYPE_UINT32, "I"),
    "uint64": (pb.DTYPE_UINT64, "Q"),
    "float16": (pb.DTYPE_FLOAT16, "e"),
    "float32": (pb.DTYPE_FLOAT32, "f"),
    "float64": (pb.DTYPE_FLOAT64, "d"),
}


# --- tagged-value helpers ---------------------------------------------------


def null() -> dict[str, Any]:
    return {"null": None}


def b(v: bool) -> dict[str, Any]:
    return {"bool": v}


def i(v: int) -> dict[str, Any]:
    return {"int": str(v)}


def f(v: str) -> dict[str, Any]:
    return {"float": v}


def s(v: str) -> dict[str, Any]:
    return {"string": v}


def by(hexdata: str) -> dict[str, Any]:
    return {"bytes": hexdata}


def lst(*items: dict[str, Any]) -> dict[str, Any]:
    return {"list": list(items)}


def mp(*pairs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"map": [[k, v] for k, v in pairs]}


def tensor(dtype: str, shape: list[int], values: list[Any]) -> dict[str, Any]:
    fmt = "<" + DTYPES[dtype][1] * len(values)
    return {"tensor": {"dtype": dtype, "shape": shape, "data": struct.pack(fmt, *values).hex()}}


def ts(seconds: int, nanos: int) -> dict[str, Any]:
    return {"timestamp": {"seconds": str(seconds), "nanos": nanos}}


def nested_lists(depth: int) -> dict[str, Any]:
    value = lst()
    for _ in range(depth - 1):
        value = lst(value)
    return value


# --- tagged JSON -> protobuf (the reference encoder) -------------------------


def to_pb(tagged: dict[str, Any]) -> pb.Value:
    ((kind, body),) = tagged.items()
    out = pb.Value()
    if kind == "null":
        out.null_value = pb.NULL_VALUE
    elif kind == "bool":
        out.bool_value = body
    elif kind == "int":
        n = int(body)
        if -(2**63) <= n < 2**63:
            out.int_value = n
        else:
            out.big_int_value = str(n)
    elif kind == "float":
        out.float_value = float(body)
    elif kind == "string":
        out.string_value = body
    elif kind == "bytes":
        out.bytes_value = bytes.fromhex(body)
    elif kind == "list":
        out.list_value.SetInParent()
        out.list_value.values.extend(to_pb(item) for item in body)
    elif kind == "map":
        out.map_value.SetInParent()
        for key, item in body:
            out.map_value.entries.add(key=key, value=to_pb(item))
    elif kind == "tensor":
        out.tensor_value.dtype = DTYPES[body["dtype"]][0]
        out.tensor_value.shape.extend(body["shape"])
        out.tensor_value.data = bytes.fromhex(body["data"])
        out.tensor_value.SetInParent()
    elif kind == "timestamp":
        out.timestamp_value.seconds = int(body["seconds"])
        out.timestamp_value.nanos = body["nanos"]
        out.timestamp_value.SetInParent()
    else:
        raise ValueError(f"unknown tagged kind {kind}")
    return out


def hexof(message: pb.Value) -> str:
    return message.SerializeToString(deterministic=True).hex()


# --- the vectors --------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    ("null", null()),
    ("bool true", b(True)),
    ("bool false", b(False)),
    ("int zero", i(0)),
    ("int one", i(1)),
    ("int minus one", i(-1)),
    ("int 300", i(300)),
    ("int64 max", i(2**63 - 1)),
    ("int64 min", i(-(2**63))),
    ("int 2^53 (beyond JS safe integers)", i(2**53)),
    ("int -(2^53+1)", i(-(2**53 + 1))),
    ("big int 2^63", i(2**63)),
    ("big int -(2^63)-1", i(-(2**63) - 1)),
    ("big int 2^64", i(2**64)),
    ("big int 10^40", i(10**40)),
    ("float zero", f("0")),
    ("float negative zero", f("-0")),
    ("float 1.5", f("1.5")),
    ("float 0.1", f("0.1")),
    ("float integral 2.0", f("2")),
    ("float NaN", f("NaN")),
    ("float +Infinity", f("Infinity")),
    ("float -Infinity", f("-Infinity")),
    ("float smallest subnormal", f("5e-324")),
    ("float max", f("1.7976931348623157e+308")),
    ("string empty", s("")),
    ("string ascii", s("hello, world")),
    ("string unicode", s("héllo wörld — 日本語 — Ελληνικά")),
    ("string astral emoji", s("🎉👩‍💻 ok")),
    ("string with NUL", s("a\u0000b")),
    ("string with BOM first", s("\ufeffx")),
    ("bytes empty", by("")),
    ("bytes with NULs", by("0001000000ff")),
    ("bytes all values", by(bytes(range(256)).hex())),
    ("list empty", lst()),
    ("list mixed", lst(i(1), s("a"), null(), b(True), f("1.5"), by("00"))),
    ("list nested", lst(lst(i(1), lst(i(2), lst(i(3)))), lst())),
    ("list nested 32 deep (the limit)", nested_lists(32)),
    ("map empty", mp()),
    ("map simple", mp(("a", i(1)), ("b", s("x")))),
    ("map keeps insertion order", mp(("z", i(1)), ("a", i(2)), ("m", i(3)))),
    ("map integer-like keys keep order", mp(("2", s("two")), ("1", s("one")), ("b", s("bee")))),
    ("map empty and unicode keys", mp(("", i(0)), ("ключ", s("значение")))),
    ("map prototype-like keys", mp(("__proto__", i(1)), ("constructor", i(2)), ("toString", i(3)))),
    (
        "map nested",
        mp(
            ("user", mp(("name", s("ada")), ("tags", lst(s("x"), s("y"))))),
            ("score", f("9.5")),
            ("active", b(False)),
        ),
    ),
    ("tensor float32 2x3", tensor("float32", [2, 3], [1.0, 2.5, -3.0, 0.0, 1e-3, 65504.0])),
    ("tensor float64 0-d", tensor("float64", [], [3.141592653589793])),
    ("tensor int64 with extremes", tensor("int64", [3], [-(2**63), -1, 2**63 - 1])),
    ("tensor uint64 max", tensor("uint64", [2], [0, 2**64 - 1])),
    ("tensor uint8 2x2", tensor("uint8", [2, 2], [0, 1, 254, 255])),
    ("tensor int8", tensor("int8", [3], [-128, 0, 127])),
    ("tensor int16", tensor("int16", [2], [-32768, 32767])),
    ("tensor int32 1x1x2", tensor("int32", [1, 1, 2], [-(2**31), 2**31 - 1])),
    ("tensor uint16", tensor("uint16", [2], [0, 65535])),
    ("tensor uint32", tensor("uint32", [2], [0, 2**32 - 1])),
    ("tensor float16", tensor("float16", [2], [1.0, -2.0])),
    ("tensor bool", tensor("bool", [4], [True, False, False, True])),
    ("tensor empty 1-d", tensor("float32", [0], [])),
    ("tensor empty 2x0x3", tensor("int32", [2, 0, 3], [])),
    ("timestamp epoch", ts(0, 0)),
    ("timestamp milliseconds", ts(1795437296, 789_000_000)),
    ("timestamp microseconds", ts(1709251199, 123_456_000)),
    ("timestamp nanoseconds", ts(1, 1)),
    ("timestamp before epoch", ts(-1, 500_000_000)),
    ("timestamp min (0001-01-01)", ts(-62135596800, 0)),
    ("timestamp max (9999-12-31T23:59:59.999)", ts(253402300799, 999_000_000)),
    (
        "everything nested",
        mp(
            ("embedding", tensor("float32", [4], [0.25, -0.5, 0.75, 1.0])),
            ("when", ts(1700000000, 0)),
            ("items", lst(mp(("id", i(2**70)), ("blob", by("deadbeef"))), null())),
        ),
    ),
]


def raw(fields: bytes) -> str:
    return fields.hex()


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field: int, body: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(body)) + body


def invalid_vectors() -> list[dict[str, str]]:
    def big(text: str) -> str:
        return hexof(pb.Value(big_int_value=text))

    def tensor_msg(dtype: int, shape: list[int], data: bytes) -> str:
        return hexof(pb.Value(tensor_value=pb.Tensor(dtype=dtype, shape=shape, data=data)))

    def timestamp_msg(seconds: int, nanos: int) -> str:
        v = pb.Value()
        v.timestamp_value.seconds = seconds
        v.timestamp_value.nanos = nanos
        return hexof(v)

    dup = pb.Value()
    dup.map_value.entries.add(key="a", value=to_pb(i(1)))
    dup.map_value.entries.add(key="a", value=to_pb(i(2)))

    entry_without_value = pb.Value()
    entry_without_value.map_value.entries.add(key="k")

    list_with_empty = pb.Value()
    list_with_empty.list_value.values.add()

    cases = [
        ("no kind (empty message)", "", "no_kind"),
        ("unknown field only", raw(varint(99 << 3) + varint(1)), "no_kind"),
        ("wrong wire type for int_value", raw(length_delimited(3, b"\x01")), "no_kind"),
        ("list item without kind", hexof(list_with_empty), "no_kind"),
        ("map entry without value", hexof(entry_without_value), "no_kind"),
        ("big_int that fits int64", big("123"), "big_int_not_canonical"),
        ("big_int with leading zero", big("09223372036854775808"), "big_int_not_canonical"),
        ("big_int with plus sign", big("+9223372036854775808"), "big_int_not_canonical"),
        ("big_int not a number", big("12a45678901234567890"), "big_int_not_canonical"),
        ("big_int empty", big(""), "big_int_not_canonical"),
        ("big_int negative zero", big("-0"), "big_int_not_canonical"),
        ("big_int over 4300 digits", big("1" * 4301), "big_int_too_large"),
        ("tensor data too short", tensor_msg(pb.DTYPE_FLOAT32, [2, 3], b"\x00" * 20), "tensor_size_mismatch"),
        ("tensor data too long", tensor_msg(pb.DTYPE_INT8, [2], b"\x00\x01\x02"), "tensor_size_mismatch"),
        ("tensor 0-d without data", tensor_msg(pb.DTYPE_FLOAT64, [], b""), "tensor_size_mismatch"),
        ("tensor dtype unspecified", tensor_msg(pb.DTYPE_UNSPECIFIED, [1], b"\x00"), "unknown_dtype"),
        ("tensor dtype unknown code", tensor_msg(99, [1], b"\x00"), "unknown_dtype"),
        ("tensor bool byte 2", tensor_msg(pb.DTYPE_BOOL, [2], b"\x01\x02"), "tensor_bool_value"),
        ("map duplicate key", hexof(dup), "duplicate_map_key"),
        ("timestamp nanos 10^9", timestamp_msg(0, 1_000_000_000), "timestamp_out_of_range"),
        ("timestamp nanos negative", timestamp_msg(0, -1), "timestamp_out_of_range"),
        ("timestamp after 9999", timestamp_msg(253402300800, 0), "timestamp_out_of_range"),
        ("timestamp before 0001", timestamp_msg(-62135596801, 0), "timestamp_out_of_range"),
        ("string with invalid UTF-8", raw(length_delimited(6, b"a\xffb")), "malformed"),
        ("map key with invalid UTF-8", raw(length_delimited(9, length_delimited(1, length_delimited(1, b"\xc3")))), "malformed"),
        ("truncated bytes", raw(length_delimited(7, b"abcdef")[:-2]), "malformed"),
        ("truncated varint", raw(b"\x18\xff"), "malformed"),
        ("list nested 33 deep", hexof(to_pb(nested_lists(33))), "too_deep"),
    ]
    return [{"name": n, "hex": h, "reason": r} for n, h, r in cases]


def build() -> dict[str, Any]:
    valid = [{"name": name, "value": tagged, "hex": hexof(to_pb(tagged))} for name, tagged in VALID]
    names = [v["name"] for v in valid]
    assert len(names) == len(set(names)), "duplicate vector names"
    return {
        "comment": "Generated by testdata/values/generate.py; see that file for the format.",
        "valid": valid,
        "invalid": invalid_vectors(),
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    target = HERE / "vectors.json"
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if target.read_text(encoding="utf-8") == text else 1)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(build()['valid'])} valid, {len(build()['invalid'])} invalid vectors)")
