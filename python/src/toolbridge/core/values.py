"""ValueCodec: Python values <-> the typed ``toolbridge.v1.Value`` message.

Mapping (docs/values.md has the full table, TypeScript included):

=======================  =========================================================
Python                   Value kind
=======================  =========================================================
None                     null
bool                     bool
int                      int (int64), big_int beyond (decimal text)
float                    float (NaN, +-inf and -0.0 kept)
str                      string
bytes/bytearray/memory   bytes (decoded as bytes)
list/tuple/set           list (decoded as list)
dict (str keys)          map, insertion order kept (decoded as dict)
numpy.ndarray / Tensor   tensor (decoded as ndarray when numpy is installed)
datetime / Timestamp     timestamp (decoded as an aware UTC datetime unless it has
                         sub-microsecond precision, then as Timestamp)
numpy scalars            their Python equivalent
=======================  =========================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import DecodeError

from toolbridge.core.errors import InvalidValueError
from toolbridge.v1 import values_pb2 as pb

try:
    import numpy as np

    HAS_NUMPY = True
except ImportError:  # pragma: no cover - exercised only without the numpy extra
    HAS_NUMPY = False

MAX_VALUE_DEPTH = 32
"""Containers may nest this deep; deeper values are refused in both languages."""
MAX_BIG_INT_DIGITS = 4300
"""Python's default int <-> str digit limit, enforced on both sides."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_CANONICAL_BIG_INT = re.compile(r"-?[1-9][0-9]*")
# 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, the range protobuf's Timestamp allows.
_MIN_SECONDS = -62135596800
_MAX_SECONDS = 253402300799
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# name, wire code, item size, numpy dtype string (little-endian)
_DTYPES: list[tuple[str, pb.DType.ValueType, int, str]] = [
    ("bool", pb.DTYPE_BOOL, 1, "|b1"),
    ("int8", pb.DTYPE_INT8, 1, "|i1"),
    ("int16", pb.DTYPE_INT16, 2, "<i2"),
    ("int32", pb.DTYPE_INT32, 4, "<i4"),
    ("int64", pb.DTYPE_INT64, 8, "<i8"),
    ("uint8", pb.DTYPE_UINT8, 1, "|u1"),
    ("uint16", pb.DTYPE_UINT16, 2, "<u2"),
    ("uint32", pb.DTYPE_UINT32, 4, "<u4"),
    ("uint64", pb.DTYPE_UINT64, 8, "<u8"),
    ("float16", pb.DTYPE_FLOAT16, 2, "<f2"),
    ("float32", pb.DTYPE_FLOAT32, 4, "<f4"),
    ("float64", pb.DTYPE_FLOAT64, 8, "<f8"),
]
_DTYPE_BY_NAME = {name: (code, size, np_dtype) for name, code, size, np_dtype in _DTYPES}
_DTYPE_BY_CODE = {code: (name, size, np_dtype) for name, code, size, np_dtype in _DTYPES}


class _PathError(InvalidValueError):
    """An InvalidValueError still unwinding; ``finish`` turns it into the public form."""


def _invalid(reason: str, message: str) -> _PathError:
    return _PathError(reason, message)


def _nested(error: InvalidValueError, segment: str) -> _PathError:
    return _PathError(error.reason, error.message, segment + error.path)


def _finish(error: InvalidValueError) -> InvalidValueError:
    if error.path:
        return InvalidValueError(error.reason, f"{error.message} (at ${error.path})", f"${error.path}")
    return InvalidValueError(error.reason, error.message)


def _key_segment(key: str) -> str:
    if re.fullmatch(r"[A-Za-z_$][\w$]*", key, flags=re.ASCII):
        return f".{key}"
    return "[" + _json_string(key) + "]"


def _json_string(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class Tensor:
    """A dense row-major array as raw little-endian bytes; used when numpy is absent."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPE_BY_NAME:
            raise _invalid("unknown_dtype", f"unknown tensor dtype '{self.dtype}'")
        size = _DTYPE_BY_NAME[self.dtype][1]
        elements = 1
        for dim in self.shape:
            if not isinstance(dim, int) or dim < 0 or dim > 0xFFFFFFFF:
                raise _invalid("tensor_shape", f"tensor dimension {dim} is not an integer in [0, 2^32)")
            elements *= dim
        if elements * size != len(self.data):
            shape = ", ".join(str(d) for d in self.shape)
            raise _invalid(
                "tensor_size_mismatch",
                f"tensor of dtype {self.dtype} and shape [{shape}] needs {elements * size} bytes "
                f"of data, got {len(self.data)}",
            )
        if self.dtype == "bool" and any(b > 1 for b in self.data):
            bad = next(b for b in self.data if b > 1)
            raise _invalid("tensor_bool_value", f"bool tensor holds the byte {bad}; only 0 and 1 are allowed")

    def to_numpy(self) -> Any:
        """The tensor as a numpy array (a copy, so it is writable)."""
        if not HAS_NUMPY:  # pragma: no cover
            raise RuntimeError("numpy is not installed; install toolbridge[numpy]")
        np_dtype = _DTYPE_BY_NAME[self.dtype][2]
        return np.frombuffer(self.data, dtype=np.dtype(np_dtype)).reshape(self.shape).copy()


@dataclass(frozen=True)
class Timestamp:
    """An instant with nanosecond precision, for timestamps a datetime cannot hold exactly."""

    seconds: int
    nanos: int

    def __post_init__(self) -> None:
        if not 0 <= self.nanos <= 999_999_999:
            raise _invalid("timestamp_out_of_range", f"timestamp nanos {self.nanos} is not in [0, 999999999]")
        if not _MIN_SECONDS <= self.seconds <= _MAX_SECONDS:
            raise _invalid("timestamp_out_of_range", f"timestamp {self.seconds}s is outside years 0001..9999")

    @classmethod
    def from_datetime(cls, value: datetime) -> Timestamp:
        # A naive datetime means local time, as datetime.timestamp() reads it.
        aware = value if value.tzinfo is not None else value.astimezone()
        delta = aware - _EPOCH
        total_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        seconds, micros = divmod(total_us, 1_000_000)
        return cls(seconds, micros * 1000)

    def to_datetime(self) -> datetime:
        """The instant as an aware UTC datetime, losing any sub-microsecond part."""
        return _EPOCH + timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)


# ---------------------------------------------------------------------------
# Encoding


def encode_value(obj: Any) -> pb.Value:
    """Encodes a Python value as a ``Value`` message; raises InvalidValueError."""
    try:
        return _encode(obj, 0)
    except InvalidValueError as error:
        raise _finish(error) from None


def encode_value_into(target: pb.Value, obj: Any) -> None:
    """``encode_value`` written into an existing message, such as a field of a request being built.

    Scalars are set in place; building a separate message and copying it in dominated the
    cost of encoding a 1000-item batch. Other values are encoded as usual and copied.
    """
    t = type(obj)
    try:
        if t is str:
            target.string_value = _checked_str(obj)
        elif t is int and INT64_MIN <= obj <= INT64_MAX:
            target.int_value = obj
        elif t is float:
            target.float_value = obj
        elif t is bool:
            target.bool_value = obj
        elif obj is None:
            target.null_value = pb.NULL_VALUE
        elif t is bytes:
            target.bytes_value = obj
        else:
            target.CopyFrom(_encode(obj, 0))
    except InvalidValueError as error:
        raise _finish(error) from None


def encode_value_bytes(obj: Any) -> bytes:
    return encode_value(obj).SerializeToString(deterministic=True)


def _encode(obj: Any, depth: int) -> pb.Value:
    # Exact type checks first: they are the hot path and keep bool out of int.
    t = type(obj)
    if obj is None:
        return pb.Value(null_value=pb.NULL_VALUE)
    if t is bool:
        return pb.Value(bool_value=obj)
    if t is int:
        return _encode_int(obj)
    if t is float:
        return pb.Value(float_value=obj)
    if t is str:
        return pb.Value(string_value=_checked_str(obj))
    if t is bytes:
        return pb.Value(bytes_value=obj)
    if t is list or t is tuple:
        return _encode_list(obj, depth)
    if t is dict:
        return _encode_map(obj, depth)
    return _encode_other(obj, depth)


def _encode_other(obj: Any, depth: int) -> pb.Value:
    if isinstance(obj, bool):
        return pb.Value(bool_value=bool(obj))
    if isinstance(obj, int):
        return _encode_int(int(obj))
    if isinstance(obj, float):
        return pb.Value(float_value=float(obj))
    if isinstance(obj, str):
        return pb.Value(string_value=_checked_str(str(obj)))
    if isinstance(obj, bytes | bytearray | memoryview):
        return pb.Value(bytes_value=bytes(obj))
    if isinstance(obj, datetime):
        return _encode_timestamp(Timestamp.from_datetime(obj))
    if isinstance(obj, Timestamp):
        return _encode_timestamp(obj)
    if isinstance(obj, Tensor):
        return pb.Value(
            tensor_value=pb.Tensor(dtype=_DTYPE_BY_NAME[obj.dtype][0], shape=list(obj.shape), data=obj.data)
        )
    if HAS_NUMPY:
        if isinstance(obj, np.ndarray):
            return _encode_ndarray(obj)
        if isinstance(obj, np.generic):
            return _encode(obj.item(), depth)
    if isinstance(obj, Mapping):
        return _encode_map(obj, depth)
    if isinstance(obj, list | tuple | set | frozenset):
        return _encode_list(list(obj), depth)
    raise _invalid("unsupported_type", f"cannot encode a value of type {type(obj).__name__}")


def _checked_str(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid("invalid_utf8", "string contains a lone surrogate and has no UTF-8 form") from None
    return text


def _encode_int(value: int) -> pb.Value:
    if INT64_MIN <= value <= INT64_MAX:
        return pb.Value(int_value=value)
    try:
        text = str(value)
    except ValueError:  # over the interpreter's own int -> str digit limit
        text = ""
    if not text or len(text.lstrip("-")) > MAX_BIG_INT_DIGITS:
        raise _invalid("big_int_too_large", f"integer has more than {MAX_BIG_INT_DIGITS} digits")
    return pb.Value(big_int_value=text)


def _check_depth(depth: int) -> None:
    if depth >= MAX_VALUE_DEPTH:
        raise _invalid("too_deep", f"value nests deeper than {MAX_VALUE_DEPTH} levels")


def _encode_list(items: list[Any] | tuple[Any, ...], depth: int) -> pb.Value:
    _check_depth(depth)
    out = pb.Value()
    out.list_value.SetInParent()  # an empty list must still set the oneof
    values = out.list_value.values
    for i, item in enumerate(items):
        try:
            values.append(_encode(item, depth + 1))
        except InvalidValueError as error:
            raise _nested(error, f"[{i}]") from None
    return out


def _encode_map(mapping: Mapping[Any, Any], depth: int) -> pb.Value:
    _check_depth(depth)
    out = pb.Value()
    out.map_value.SetInParent()  # an empty map must still set the oneof
    entries = out.map_value.entries
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise _invalid("map_key", f"map keys must be str, got {type(key).__name__}")
        _checked_str(key)
        try:
            entries.append(pb.MapEntry(key=key, value=_encode(item, depth + 1)))
        except InvalidValueError as error:
            raise _nested(error, _key_segment(key)) from None
    return out


def _encode_timestamp(ts: Timestamp) -> pb.Value:
    out = pb.Value()
    out.timestamp_value.seconds = ts.seconds
    out.timestamp_value.nanos = ts.nanos
    return out


def _encode_ndarray(array: Any) -> pb.Value:
    kind = array.dtype
    name = "bool" if kind == np.bool_ else kind.name
    if name not in _DTYPE_BY_NAME:
        raise _invalid("unknown_dtype", f"numpy dtype {kind} has no tensor dtype")
    code, _, np_dtype = _DTYPE_BY_NAME[name]
    data = np.ascontiguousarray(array, dtype=np.dtype(np_dtype)).tobytes()
    return pb.Value(tensor_value=pb.Tensor(dtype=code, shape=list(array.shape), data=data))


# ---------------------------------------------------------------------------
# Decoding


def decode_value(value: pb.Value) -> Any:
    """Decodes a ``Value`` message to a Python value; raises InvalidValueError."""
    try:
        return _decode(value, 0)
    except InvalidValueError as error:
        raise _finish(error) from None


def decode_value_bytes(data: bytes) -> Any:
    message = pb.Value()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise InvalidValueError("malformed", f"malformed Value bytes: {error}") from None
    return decode_value(message)


def _decode(value: pb.Value, depth: int) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "int_value":
        return value.int_value
    if kind == "string_value":
        return value.string_value
    if kind == "float_value":
        return value.float_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "null_value":
        return None
    if kind == "map_value":
        _check_depth(depth)
        result: dict[str, Any] = {}
        for entry in value.map_value.entries:
            if entry.key in result:
                raise _invalid("duplicate_map_key", f"map has the key {_json_string(entry.key)} twice")
            try:
                result[entry.key] = _decode(entry.value, depth + 1)
            except InvalidValueError as error:
                raise _nested(error, _key_segment(entry.key)) from None
        return result
    if kind == "list_value":
        _check_depth(depth)
        items: list[Any] = []
        for i, item in enumerate(value.list_value.values):
            try:
                items.append(_decode(item, depth + 1))
            except InvalidValueError as error:
                raise _nested(error, f"[{i}]") from None
        return items
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "big_int_value":
        return _decode_big_int(value.big_int_value)
    if kind == "tensor_value":
        return _decode_tensor(value.tensor_value)
    if kind == "timestamp_value":
        ts = Timestamp(value.timestamp_value.seconds, value.timestamp_value.nanos)
        return ts.to_datetime() if ts.nanos % 1000 == 0 else ts
    raise _invalid("no_kind", "Value has no kind set")


def _decode_big_int(text: str) -> int:
    if not _CANONICAL_BIG_INT.fullmatch(text):
        raise _invalid(
            "big_int_not_canonical", f"big_int_value {_json_string(text)} is not canonical decimal"
        )
    if len(text.lstrip("-")) > MAX_BIG_INT_DIGITS:
        raise _invalid("big_int_too_large", f"big_int_value has more than {MAX_BIG_INT_DIGITS} digits")
    number = int(text)
    if INT64_MIN <= number <= INT64_MAX:
        raise _invalid(
            "big_int_not_canonical", f"big_int_value {text} fits in int64 and must be sent as int_value"
        )
    return number


def _decode_tensor(message: pb.Tensor) -> Any:
    entry = _DTYPE_BY_CODE.get(message.dtype)
    if entry is None:
        raise _invalid("unknown_dtype", f"unknown tensor dtype code {message.dtype}")
    tensor = Tensor(entry[0], tuple(message.shape), message.data)
    return tensor.to_numpy() if HAS_NUMPY else tensor
