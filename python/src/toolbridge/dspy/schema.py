"""JSON Schema -> what DSPy shows the LM: the Python types and ``dspy.Tool`` arguments of a host tool.

A host tool's parameters are one JSON Schema object; DSPy wants one schema per argument.
Named sub-schemas (zod's ``.meta({ id })``) arrive as ``{"$ref": "#/$defs/Name"}`` pointing
into the object's ``$defs``, so each argument's schema is resolved on its own: references
are inlined (the LM sees the shape), except a reference back into a schema being inlined
(a recursive type), which stays a ``$ref`` into ``$defs`` the argument's schema carries
itself. Every argument schema is therefore complete and valid on its own, for the prompt and
for checking the LM's arguments; ``function_parameters`` puts them back into one object for
native function calling. Resolution is ``referencing``'s (the library ``jsonschema`` uses).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from toolbridge.core.specs import ToolSpec

logger = logging.getLogger("toolbridge")

_SIMPLE_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}

#: Keywords whose values are data, not schemas: never searched for references.
_DATA_KEYWORDS = frozenset({"default", "const", "enum", "examples"})
#: Keywords dropped from an argument's schema: its own ``$defs`` is rebuilt with what it uses.
_DROPPED_KEYWORDS = frozenset({"$schema", "$id", "$defs", "definitions"})
#: The base URI the parameters schema is registered under, so that ``#/...`` resolves in it.
_PARAMETERS_URI = "urn:toolbridge:parameters"


def json_schema_type(schema: Mapping[str, Any]) -> Any:
    """The Python type DSPy should parse an argument into, from its JSON Schema.

    ``enum`` becomes ``Literal``, ``anyOf``/``oneOf``/type lists a union, arrays and objects
    keep their item types; anything this does not understand (a ``$ref`` included) is ``Any``
    (no local parsing, the host still validates).
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


# -- references ----------------------------------------------------------------------------------


@dataclass
class _Definitions:
    """The ``$defs`` one argument's schema needs: recursive schemas, by the name they are referenced as."""

    schemas: dict[str, Any] = field(default_factory=dict)
    #: The name given to each recursive target (by identity of its node in the parameters schema).
    names: dict[int, str] = field(default_factory=dict)

    def name_for(self, target: object, ref: str) -> str:
        key = id(target)
        if key not in self.names:
            base = ref.rstrip("/").rsplit("/", 1)[-1].lstrip("#") or "root"
            name, n = base, 2
            while name in self.names.values():
                name, n = f"{base}_{n}", n + 1
            self.names[key] = name
        return self.names[key]


class SchemaResolver:
    """Resolves the references of one parameters schema, one argument at a time."""

    def __init__(self, parameters_schema: Mapping[str, Any]) -> None:
        resource = Resource.from_contents(parameters_schema, default_specification=DRAFT202012)
        self.resolver = Registry().with_resource(_PARAMETERS_URI, resource).resolver(base_uri=_PARAMETERS_URI)

    def argument_schema(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """``schema`` with its references inlined, recursive ones kept valid by the ``$defs`` it carries."""
        definitions = _Definitions()
        resolved: dict[str, Any] = self._resolve(schema, self.resolver, (), definitions)
        if definitions.schemas:
            resolved["$defs"] = definitions.schemas
        return resolved

    def _resolve(
        # ``resolver``: a referencing.Resolver (its class is not exported), based where ``node`` is.
        self,
        node: Any,
        resolver: Any,
        inlining: tuple[int, ...],
        definitions: _Definitions,
    ) -> Any:
        if isinstance(node, list):
            return [self._resolve(item, resolver, inlining, definitions) for item in node]
        if not isinstance(node, Mapping):
            return node
        resolved = {
            key: value if key in _DATA_KEYWORDS else self._resolve(value, resolver, inlining, definitions)
            for key, value in node.items()
            if key not in _DROPPED_KEYWORDS and key != "$ref"
        }
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return resolved
        try:
            target = resolver.lookup(ref)
        except Unresolvable as error:
            # A dangling or remote reference: check nothing locally (the host still validates).
            logger.warning(
                "cannot resolve %r in a tool's parameters schema (%s); not checking it locally", ref, error
            )
            return resolved
        if id(target.contents) in inlining:
            # A schema that contains itself: refer to it by name, and keep its definition.
            return {"$ref": f"#/$defs/{definitions.name_for(target.contents, ref)}", **resolved}
        body = self._resolve(target.contents, target.resolver, (*inlining, id(target.contents)), definitions)
        if id(target.contents) in definitions.names:
            name = definitions.names[id(target.contents)]
            definitions.schemas.setdefault(name, copy.deepcopy(body))
        # Keywords next to the reference (a description, a default) apply too; they win on a clash.
        return {**body, **resolved} if isinstance(body, Mapping) else body


def function_parameters(args: Mapping[str, Mapping[str, Any]], required: Sequence[str]) -> dict[str, Any]:
    """One JSON Schema object of the arguments, for native function calling.

    The ``$defs`` each argument carries move to the object (a ``#/$defs/...`` reference in a
    property resolves against the document root, not the property).
    """
    properties: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for name, schema in args.items():
        own = dict(schema)
        definitions.update(own.pop("$defs", {}))
        properties[name] = own
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": list(required)}
    if definitions:
        parameters["$defs"] = definitions
    return parameters


# -- dspy.Tool arguments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolArguments:
    """What ``dspy.Tool`` needs to know of a host tool's arguments, in the host's parameter order."""

    #: Each argument's JSON Schema (type, constraints, default, description), references resolved:
    #: what ReAct puts in the prompt and what DSPy checks the LM's arguments against.
    args: dict[str, Any]
    #: The Python type each argument is parsed into.
    arg_types: dict[str, Any]
    arg_desc: dict[str, str]
    #: The arguments the host requires (no default, not optional).
    required: tuple[str, ...]


def dspy_tool_args(spec: ToolSpec) -> ToolArguments:
    """The ``dspy.Tool`` arguments of a host tool, from its parameters schema."""
    properties = spec.parameters_schema.get("properties", {})
    resolver = SchemaResolver(spec.parameters_schema)
    args: dict[str, Any] = {}
    arg_types: dict[str, Any] = {}
    arg_desc: dict[str, str] = {}
    for parameter in spec.parameters:
        schema = resolver.argument_schema(properties.get(parameter.name, {}))
        if parameter.description and "description" not in schema:
            schema["description"] = parameter.description
        args[parameter.name] = schema
        arg_types[parameter.name] = json_schema_type(schema)
        if parameter.description:
            arg_desc[parameter.name] = parameter.description
    required = tuple(parameter.name for parameter in spec.parameters if parameter.required)
    return ToolArguments(args, arg_types, arg_desc, required)


# -- results ---------------------------------------------------------------------------------------


class ResultShape:
    """Where a tool's output schema declares JSON ``number`` (not ``integer``): integers there become floats.

    The wire keeps an integral number an int (a tool returning ``100`` for a price); a result
    whose schema says ``number`` should still read as a float in Python, as it would had the
    tool computed ``100.5``.
    """

    def __init__(self, output_schema: Mapping[str, Any] | None) -> None:
        self.schema: dict[str, Any] | None = None
        if output_schema and _mentions_number(output_schema):
            self.schema = SchemaResolver(output_schema).argument_schema(output_schema)

    def apply(self, value: Any) -> Any:
        """``value`` with the integers the schema declares ``number`` as floats (the rest unchanged)."""
        if self.schema is None:
            return value
        return _floats(value, self.schema, self.schema.get("$defs", {}))


def _mentions_number(schema: Mapping[str, Any]) -> bool:
    # A text search is enough to skip the walk for the many schemas without any number.
    return '"number"' in json.dumps(schema)


def _floats(value: Any, schema: Any, definitions: Mapping[str, Any]) -> Any:
    if not isinstance(schema, Mapping):
        return value
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = {**definitions.get(ref.removeprefix("#/$defs/"), {}), **schema}
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if _declares_number(schema) else value
    if isinstance(value, list):
        items = schema.get("items")
        return [_floats(item, items, definitions) for item in value] if isinstance(items, Mapping) else value
    if isinstance(value, dict):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        extra = schema.get("additionalProperties")
        return {key: _floats(item, properties.get(key, extra), definitions) for key, item in value.items()}
    return value


def _declares_number(schema: Mapping[str, Any]) -> bool:
    kinds: list[Any] = []
    for candidate in (schema, *(m for k in ("anyOf", "oneOf") for m in schema.get(k) or [])):
        if isinstance(candidate, Mapping):
            kind = candidate.get("type")
            kinds.extend(kind if isinstance(kind, list) else [kind])
    return "number" in kinds and "integer" not in kinds
