"""A Python function's parameters and result as pydantic models and JSON Schemas.

Types come from the function's annotations (``typing.Annotated`` and ``pydantic.Field``
included), descriptions from its docstring (Google ``Args:``, NumPy ``Parameters`` or Sphinx
``:param x:`` style). pydantic generates the schemas and later validates the arguments and the
results, so the schemas the host publishes and the checks the worker makes cannot disagree.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PydanticSchemaGenerationError, TypeAdapter, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticOmit, core_schema

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:?\s*$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_GOOGLE_ITEM = re.compile(r"^(\s*)(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\s*)(\w+)\s*(?::\s*(.*))?$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


class LenientJsonSchema(GenerateJsonSchema):
    """Describes types JSON Schema cannot express (``numpy.ndarray``, arbitrary classes) as ``{}``.

    The worker still checks them (``isinstance``); the host then accepts any value there.
    """

    def handle_invalid_for_json_schema(
        self, schema: core_schema.CoreSchema, error_info: str
    ) -> JsonSchemaValue:
        return {}

    def callable_schema(self, schema: core_schema.CallableSchema) -> JsonSchemaValue:
        raise PydanticOmit


@dataclass(frozen=True)
class Docstring:
    summary: str
    params: dict[str, str]


def parse_docstring(doc: str | None) -> Docstring:
    """The description (everything before the parameter section) and each parameter's text."""
    text = inspect.cleandoc(doc or "")
    lines = text.splitlines()
    params: dict[str, str] = {}
    summary: list[str] = []
    i = 0
    in_summary = True
    while i < len(lines):
        line = lines[i]
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            in_summary = False
            params[sphinx.group(1)] = sphinx.group(2).strip()
        elif _SECTION.match(line):
            in_summary = False
            numpy = i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1]) is not None
            i = _read_section(lines, i + (2 if numpy else 1), numpy, params)
            continue
        elif re.match(r"^\s*(Returns?|Yields?|Raises|Examples?|Notes?)\s*:?\s*$", line):
            in_summary = False
        elif in_summary:
            summary.append(line)
        i += 1
    return Docstring("\n".join(summary).strip(), params)


def _read_section(lines: list[str], start: int, numpy: bool, params: dict[str, str]) -> int:
    """Reads one parameter section from ``start``; returns the index of the first line after it."""
    i = start
    current: str | None = None
    item_indent = -1
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if numpy and i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1]):
            break  # the next NumPy section starts here
        if not numpy and item_indent >= 0 and indent < item_indent:
            break
        match = (_NUMPY_ITEM if numpy else _GOOGLE_ITEM).match(line)
        if match and (item_indent < 0 or indent == item_indent):
            item_indent = indent
            current = match.group(2).lstrip("*")
            params[current] = "" if numpy else (match.group(4) or "").strip()
        elif current is not None and indent > item_indent:
            joined = f"{params[current]} {line.strip()}"
            params[current] = joined.strip()
        else:
            break
        i += 1
    return i


@dataclass(frozen=True)
class Parameters:
    """What a tool function takes: the model that validates its arguments and how to pass them."""

    model: type[BaseModel]
    #: Parameter names in signature order (the order positional arguments bind in).
    names: tuple[str, ...]
    #: Names passed positionally (positional-only parameters); the rest go by keyword.
    positional_only: frozenset[str]
    #: The parameter that receives the call's ToolContext, if the function declares one.
    context_param: str | None
    #: Whether the function takes ``**kwargs`` (unknown arguments are then passed through).
    takes_extra: bool
    description: str
    schema: dict[str, Any]


def describe_parameters(fn: Callable[..., Any], name: str, context_type: type) -> Parameters:
    """The parameters of ``fn``; raises TypeError for a signature a tool cannot have (``*args``)."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    doc = parse_docstring(fn.__doc__)
    fields: dict[str, Any] = {}
    names: list[str] = []
    positional_only: set[str] = set()
    context_param = None
    takes_extra = False
    for param in signature.parameters.values():
        annotation = hints.get(param.name, Any)
        if annotation is context_type:
            context_param = param.name
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"tool '{name}': *{param.name} cannot be described; use a list parameter")
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            takes_extra = True
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional_only.add(param.name)
        names.append(param.name)
        default = ... if param.default is inspect.Parameter.empty else param.default
        description = doc.params.get(param.name)
        field = Field(default, description=description) if description else Field(default)
        fields[param.name] = (annotation, field)
    config = ConfigDict(
        extra="allow" if takes_extra else "forbid",
        arbitrary_types_allowed=True,
        title=name,
    )
    model = create_model(f"{name}_arguments", __config__=config, **fields)
    schema = model.model_json_schema(schema_generator=LenientJsonSchema)
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        # pydantic's per-field titles repeat the name in title case; they only add noise for an LM.
        if isinstance(prop, dict):
            prop.pop("title", None)
    return Parameters(
        model=model,
        names=tuple(names),
        positional_only=frozenset(positional_only),
        context_param=context_param,
        takes_extra=takes_extra,
        description=doc.summary,
        schema=schema,
    )


_STREAM_ORIGINS = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


@dataclass(frozen=True)
class Output:
    """What a tool returns (each chunk, for a generator): the JSON Schema the host publishes as
    its ``output_schema`` and the pydantic adapter that checks each result against it."""

    schema: dict[str, Any]
    adapter: TypeAdapter[Any]


def describe_output(fn: Callable[..., Any], streaming: bool) -> Output | None:
    """The result's type (each chunk's, for a generator); None when it is not annotated."""
    annotation = typing.get_type_hints(fn, include_extras=True).get("return", Any)
    if streaming and get_origin(annotation) in _STREAM_ORIGINS:
        args = get_args(annotation)
        annotation = args[0] if args else Any
    if annotation is Any or annotation is None or annotation is type(None):
        return None
    try:
        adapter = _adapter(annotation)
        schema = adapter.json_schema(schema_generator=LenientJsonSchema)
    except Exception:  # an output type pydantic cannot describe is neither published nor checked
        return None
    return Output(schema, adapter) if schema else None


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    # A model or dataclass brings its own config (pydantic refuses another); other types get
    # arbitrary_types_allowed, so that numpy.ndarray is checked with isinstance.
    try:
        return TypeAdapter(annotation)
    except PydanticSchemaGenerationError:
        return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
