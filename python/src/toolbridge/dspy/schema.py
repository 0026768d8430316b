"""JSON Schema -> what DSPy shows the LM: the Python types and ``dspy.Tool`` arguments of a host tool."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union

from toolbridge.specs import ToolSpec

_SIMPLE_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}


def json_schema_type(schema: Mapping[str, Any]) -> Any:
    """The Python type DSPy should parse an argument into, from its JSON Schema.

    ``enum`` becomes ``Literal``, ``anyOf``/``oneOf``/type lists a union, arrays and objects
    keep their item types; anything this does not understand is ``Any`` (no local parsing,
    the host still validates).
    """
    if "const" in schema:
        return _literal([schema["const"]])
    if "enum" in schema:
        return _literal(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return _union(json_schema_type(member) for member in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union(json_schema_type({**schema, "type": member}) for member in kind)
    if kind in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[kind]
    if kind == "array":
        items = schema.get("items")
        return list[json_schema_type(items)] if isinstance(items, Mapping) else list[Any]  # type: ignore[misc]
    if kind == "object":
        extra = schema.get("additionalProperties")
        values = json_schema_type(extra) if isinstance(extra, Mapping) else Any
        return dict[str, values]  # type: ignore[valid-type]
    return Any


def _literal(values: Sequence[Any]) -> Any:
    if not values or not all(isinstance(v, str | int | float | bool) or v is None for v in values):
        return Any
    return Literal.__getitem__(tuple(values))


def _union(members: Iterable[Any]) -> Any:
    unique = list(dict.fromkeys(members))
    if Any in unique:
        return Any
    return unique[0] if len(unique) == 1 else Union.__getitem__(tuple(unique))


def dspy_tool_args(spec: ToolSpec) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """``(args, arg_types, arg_desc)`` for ``dspy.Tool``, in the host's parameter order.

    ``args`` are the host's JSON Schema properties (type, constraints, default, description),
    which is what ReAct puts in the prompt and what DSPy validates the LM's arguments against
    before the call goes out.
    """
    properties = spec.parameters_schema.get("properties", {})
    args: dict[str, Any] = {}
    arg_types: dict[str, Any] = {}
    arg_desc: dict[str, str] = {}
    for parameter in spec.parameters:
        schema = copy.deepcopy(properties.get(parameter.name, {}))
        schema.pop("$schema", None)
        if parameter.description and "description" not in schema:
            schema["description"] = parameter.description
        args[parameter.name] = schema
        arg_types[parameter.name] = json_schema_type(schema)
        if parameter.description:
            arg_desc[parameter.name] = parameter.description
    return args, arg_types, arg_desc
