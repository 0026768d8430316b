"""The value codec against testdata/values/vectors.json (the vectors the TS suite checks too)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from toolbridge.core.errors import InvalidValueError
from toolbridge.core.values import (
    MAX_VALUE_DEPTH,
    Tensor,
    Timestamp,
    decode_value_bytes,
    encode_value,
    encode_value_bytes,
    encode_value_into,
)
from toolbridge.v1 import values_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "testdata/values/vectors.json").read_text(encoding="utf-8"))
NP_DTYPES = {
    "bool": "|b1", "int8": "|i1", "int16": "<i2", "int32": "<i4", "int64": "<i8", "uint8": "|u1",
    "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "float16": "<f2", "float32": "<f4", "float64": "<f8",
}  # fmt: skip


def native(tagged: dict[str, Any]) -> Any:
    """The Python value a tagged vector stands for."""
    ((kind, body),) = tagged.items()
    if kind == "null":
        return None
    if kind in ("bool", "string"):
        return body
    if kind == "int":
        return int(body)
    if kind == "float":
        return float(body)
    if kind == "bytes":
        return bytes.fromhex(body)
    if kind == "list":
        return [native(item) for item in body]
    if kind == "map":
        return {key: native(item) for key, item in body}
    if kind == "tensor":
        dtype = np.dtype(NP_DTYPES[body["dtype"]])
        return np.frombuffer(bytes.fromhex(body["data"]), dtype=dtype).reshape(body["shape"])
    if kind == "timestamp":
        ts = Timestamp(int(body["seconds"]), body["nanos"])
        return ts.to_datetime() if ts.nanos % 1000 == 0 else ts
    raise AssertionError(kind)


def assert_same(actual: Any, expected: Any, path: str = "$") -> None:
    """Equality that also checks exact types, float bits, dict order and tensor dtype."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, float):
        assert struct.pack("<d", actual) == struct.pack("<d", expected), f"{path}: {actual} != {expected}"
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{n}]")
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: key order {list(actual)} != {list(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, path
        assert actual.shape == expected.shape, path
        assert actual.tobytes() == expected.tobytes(), path
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector_encodes_to_exact_bytes(vector: dict[str, Any]) -> None:
    assert encode_value_bytes(native(vector["value"])).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_encoding_into_a_used_message_gives_the_same_bytes(vector: dict[str, Any]) -> None:
    # Batches encode arguments in place; whatever the message held before must not leak through.
    target = pb.Value(list_value=pb.ListValue(values=[pb.Value(string_value="stale")]))
    encode_value_into(target, native(vector["value"]))
    assert target.SerializeToString(deterministic=True).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector_decodes_to_value(vector: dict[str, Any]) -> None:
    assert_same(decode_value_bytes(bytes.fromhex(vector["hex"])), native(vector["value"]))


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vector_is_rejected(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError) as caught:
        decode_value_bytes(bytes.fromhex(vector["hex"]))
    assert caught.value.reason == vector["reason"], str(caught.value)
    assert caught.value.type == "InvalidValue"


def test_vector_counts_cover_the_contract() -> None:
    kinds: set[str] = set()

    def walk(tagged: dict[str, Any]) -> None:
        ((kind, body),) = tagged.items()
        kinds.add(kind)
        if kind == "list":
            for item in body:
                walk(item)
        elif kind == "map":
            for _, item in body:
                walk(item)

    for vector in VECTORS["valid"]:
        walk(vector["value"])
    assert len(VECTORS["valid"]) >= 40
    assert kinds == {"null", "bool", "int", "float", "string", "bytes", "list", "map", "tensor", "timestamp"}


def test_vectors_file_matches_generator() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "testdata/values/generate.py"), "--check"], check=False
    )
    assert result.returncode == 0, "vectors.json is stale: run testdata/values/generate.py"


# --- Python-specific mapping beyond the vectors -------------------------------------------


def test_python_types_map_onto_kinds() -> None:
    aware = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    value = {
        "tuple": (1, 2),
        "bytearray": bytearray(b"\x00x"),
        "memoryview": memoryview(b"ab"),
        "np_float": np.float32(1.5),
        "np_int": np.int64(7),
        "np_bool": np.bool_(True),
        "aware": aware,
        "set": {3},
    }
    decoded = decode_value_bytes(encode_value_bytes(value))
    assert decoded == {
        "tuple": [1, 2],
        "bytearray": b"\x00x",
        "memoryview": b"ab",
        "np_float": 1.5,
        "np_int": 7,
        "np_bool": True,
        "aware": aware.astimezone(UTC),
        "set": [3],
    }
    assert type(decoded["np_bool"]) is bool


def test_naive_datetime_is_local_time() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    decoded = decode_value_bytes(encode_value_bytes(naive))
    assert decoded.timestamp() == naive.timestamp()


def test_non_contiguous_and_big_endian_arrays_are_normalised() -> None:
    array = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    decoded = decode_value_bytes(encode_value_bytes(array))
    assert decoded.dtype == np.dtype("<i4")
    assert decoded.tolist() == array.tolist()


def test_tensor_dataclass_round_trips_without_numpy_types() -> None:
    tensor = Tensor("float16", (2,), struct.pack("<2e", 1.0, 2.0))
    assert decode_value_bytes(encode_value_bytes(tensor)).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("value", "reason", "path"),
    [
        ({"a": [1, {"b": object()}]}, "unsupported_type", "$.a[1].b"),
        ({1: "x"}, "map_key", ""),
        (["ok", "bad \ud800"], "invalid_utf8", "$[1]"),
        ({"c": np.array([1 + 2j])}, "unknown_dtype", "$.c"),
        (2**14300, "big_int_too_large", ""),
    ],
    ids=["unsupported", "map-key", "surrogate", "complex-dtype", "huge-int"],
)
def test_unencodable_values_name_the_place(value: Any, reason: str, path: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        encode_value(value)
    assert caught.value.reason == reason
    assert caught.value.path == path
    if path:
        assert f"(at {path})" in str(caught.value)
    with pytest.raises(InvalidValueError) as into:
        encode_value_into(pb.Value(), value)
    assert (into.value.reason, into.value.path) == (reason, path)


def test_nesting_limit_applies_when_encoding() -> None:
    value: Any = []
    for _ in range(MAX_VALUE_DEPTH):
        value = [value]
    with pytest.raises(InvalidValueError) as caught:
        encode_value(value)
    assert caught.value.reason == "too_deep"

    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(InvalidValueError):
        encode_value(cyclic)
