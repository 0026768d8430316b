"""``@tool``: a typed Python function (sync, async, generator or async generator) as a tool.

    from toolbridge.worker import tool

    @tool
    def summarize(text: str, max_words: int = 30) -> str:
        \"\"\"Shortens a text.

        Args:
            text: the text to shorten
            max_words: at most this many words
        \"\"\"
        return " ".join(text.split()[:max_words])

The decorated function stays a plain function; the worker finds it in its module and serves
it. Arguments are checked against the function's types before it runs (a bad one fails with
ValidationError naming it); whatever it raises becomes ToolExecutionError with the exception's
class in ``details["exception"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import threading
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from types import ModuleType
from typing import Any, Literal, TypeVar, overload

import pydantic

from toolbridge.core.errors import ErrorType
from toolbridge.core.values import Tensor, Timestamp, encode_value
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.worker.context import ToolContext, enter, leave
from toolbridge.worker.failures import CallFailure, output_failure, validation_failure
from toolbridge.worker.schema import Output, Parameters, describe_output, describe_parameters

F = TypeVar("F", bound=Callable[..., Any])

Kind = Literal["sync", "async", "generator", "async_generator"]

ATTRIBUTE = "__toolbridge_tool__"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class WorkerTool:
    """One ``@tool`` function: its spec, argument checks and how to run it."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_ms: int = 0,
        cacheable: bool = False,
        idempotent: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name or not set(self.name) <= _NAME_CHARS or self.name[0].isdigit():
            raise ValueError(f"invalid tool name {self.name!r}: use letters, digits, '_', '.', '-'")
        self.kind: Kind = _kind_of(fn)
        self.streaming = self.kind in ("generator", "async_generator")
        self.parameters: Parameters = describe_parameters(fn, self.name, ToolContext)
        self.description = description or self.parameters.description or f"Python function {self.name}"
        self.timeout_ms = timeout_ms
        self.output: Output | None = describe_output(fn, self.streaming)
        self.output_schema = self.output.schema if self.output is not None else None
        self.spec = self._build_spec(cacheable, idempotent, dict(metadata or {}))

    def _build_spec(self, cacheable: bool, idempotent: bool, metadata: dict[str, str]) -> pb.ToolSpec:
        schema = self.parameters.schema
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        params = []
        for param in self.parameters.names:
            prop = properties.get(param, {})
            spec = pb.ParameterSpec(
                name=param,
                type=prop.get("type", "") if isinstance(prop.get("type"), str) else "",
                description=prop.get("description", ""),
                required=param in required,
            )
            if "default" in prop:
                with contextlib.suppress(Exception):  # a default the codec cannot carry stays unpublished
                    spec.default_value.CopyFrom(encode_value(prop["default"]))
            params.append(spec)
        return pb.ToolSpec(
            name=self.name,
            description=self.description,
            type=pb.TOOL_TYPE_STREAMING if self.streaming else pb.TOOL_TYPE_STANDARD,
            parameters_schema=json.dumps(schema),
            output_schema=json.dumps(self.output_schema) if self.output_schema else "",
            parameters=params,
            limits=pb.ToolLimits(timeout_ms=self.timeout_ms),
            cacheable=cacheable,
            idempotent=idempotent,
            scope=pb.TOOL_SCOPE_GLOBAL,
            metadata={"language": "python", "module": self.fn.__module__, **metadata},
        )

    # -- arguments

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Positional arguments bound to names in signature order, merged with the keywords."""
        names = self.parameters.names
        if len(args) > len(names):
            raise CallFailure(
                ErrorType.VALIDATION_ERROR,
                f"tool '{self.name}' takes at most {len(names)} positional arguments, got {len(args)}",
                {"field": ""},
            )
        bound = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in bound:
                raise CallFailure(
                    ErrorType.VALIDATION_ERROR,
                    f"tool '{self.name}': argument '{key}' given both by position and by name",
                    {"field": key},
                )
            bound[key] = value
        return bound

    def validate(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Checks the arguments against the function's types; returns what to call it with."""
        try:
            model = self.parameters.model.model_validate(dict(arguments))
        except pydantic.ValidationError as error:
            raise validation_failure(self.name, error) from None
        by_position = self.parameters.positional_only
        positional = [getattr(model, name) for name in self.parameters.names if name in by_position]
        keywords = {name: getattr(model, name) for name in self.parameters.names if name not in by_position}
        if self.parameters.takes_extra and model.model_extra:
            keywords.update(model.model_extra)
        return positional, keywords

    def _with_context(self, keywords: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        if self.parameters.context_param is not None:
            keywords[self.parameters.context_param] = context
        return keywords

    def check_output(self, value: Any, chunk: int | None = None) -> Any:
        """A result (a generator's chunk ``chunk``) as its return annotation makes it, in wire form.

        pydantic converts what the annotation allows (an int returned for ``-> float`` is sent as a
        float) and refuses the rest: ToolExecutionError naming the path, as on the host.
        """
        if self.output is None:
            return wire_form(value)
        try:
            checked = self.output.adapter.validate_python(value)
        except pydantic.ValidationError as error:
            raise output_failure(self.name, error, chunk) from None
        return wire_form(checked)

    # -- running

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> Any:
        """Runs a plain tool to its result (a generator's chunks are collected into a list)."""
        positional, keywords = self.validate(arguments)
        keywords = self._with_context(keywords, context)
        if self.streaming:
            return [chunk async for chunk in self._chunks(positional, keywords, context)]
        if self.kind == "async":
            token = enter(context)
            try:
                return self.check_output(await self.fn(*positional, **keywords))
            finally:
                leave(token)
        return self.check_output(await _in_thread(context, self.fn, *positional, **keywords))

    async def stream(self, arguments: Mapping[str, Any], context: ToolContext) -> AsyncIterator[Any]:
        """The tool's chunks; a plain tool gives its result as the only chunk."""
        positional, keywords = self.validate(arguments)
        keywords = self._with_context(keywords, context)
        if not self.streaming:
            yield await self.call(arguments, context)
            return
        async for chunk in self._chunks(positional, keywords, context):
            yield chunk

    async def _chunks(
        self, positional: list[Any], keywords: dict[str, Any], context: ToolContext
    ) -> AsyncIterator[Any]:
        if self.kind == "async_generator":
            token = enter(context)
            try:
                agen = self.fn(*positional, **keywords)
                try:
                    index = 0
                    async for chunk in agen:
                        yield self.check_output(chunk, index)
                        index += 1
                finally:
                    await agen.aclose()
            finally:
                leave(token)
            return
        gen: Generator[Any, None, None] = self.fn(*positional, **keywords)
        # next() and close() must not overlap: close() waits for a next() still running.
        lock = threading.Lock()

        def step() -> tuple[bool, Any]:
            with lock:
                chunk = next(gen, _END)
                return (chunk is _END, None if chunk is _END else chunk)

        def close() -> None:
            with lock:
                gen.close()

        try:
            index = 0
            while True:
                done, chunk = await _in_thread(context, step)
                if done:
                    break
                yield self.check_output(chunk, index)
                index += 1
        except BaseException:
            # Cancelled or abandoned: GeneratorExit reaches the generator once its current step
            # ends; waiting for that here would hold the caller up for as long as the step runs.
            context.cancelled.set()
            asyncio.get_running_loop().run_in_executor(None, _in_context(context, close))
            raise
        await _in_thread(context, close)


_END = object()


def _in_context(
    context: ToolContext, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Callable[[], Any]:
    def run() -> Any:
        token = enter(context)
        try:
            return fn(*args, **kwargs)
        finally:
            leave(token)

    return run


async def _in_thread(context: ToolContext, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Runs sync code in a thread with the call's context; cancellation sets ``context.cancelled``."""
    future = asyncio.get_running_loop().run_in_executor(None, _in_context(context, fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # A thread cannot be interrupted: tell the function, and let it finish on its own.
        context.cancelled.set()
        raise


def wire_form(value: Any) -> Any:
    """A result in the shapes the value codec carries: pydantic models and dataclasses as maps."""
    if isinstance(value, pydantic.BaseModel):
        return wire_form(value.model_dump(mode="python"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type | Tensor | Timestamp):
        return wire_form({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {key: wire_form(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [wire_form(item) for item in value]
    return value


def _kind_of(fn: Callable[..., Any]) -> Kind:
    if inspect.isasyncgenfunction(fn):
        return "async_generator"
    if inspect.isgeneratorfunction(fn):
        return "generator"
    if inspect.iscoroutinefunction(fn):
        return "async"
    return "sync"


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_ms: int = 0,
    cacheable: bool = False,
    idempotent: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_ms: int = 0,
    cacheable: bool = False,
    idempotent: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> F | Callable[[F], F]:
    """Marks a function as a tool of the worker that loads its module (``@tool`` or ``@tool(...)``).

    ``name`` defaults to the function's name, ``description`` to its docstring's summary;
    ``timeout_ms`` bounds each call, for a generator its whole stream (0: the caller's timeout
    only): it is published in the spec, and the host, which owns every call's timeout, keeps it;
    ``cacheable`` and ``idempotent`` are published in the spec as on TypeScript tools. The
    return annotation is the output schema every result (every chunk) is checked against.
    The schema is built now, so a signature that cannot be described fails at import, not at
    the first call.
    """

    def mark(function: F) -> F:
        setattr(
            function,
            ATTRIBUTE,
            WorkerTool(
                function,
                name=name,
                description=description,
                timeout_ms=timeout_ms,
                cacheable=cacheable,
                idempotent=idempotent,
                metadata=metadata,
            ),
        )
        return function

    return mark(fn) if fn is not None else mark


def tools_of(module: ModuleType) -> list[WorkerTool]:
    """The ``@tool`` functions defined or imported at the top level of ``module``, in definition order."""
    found: dict[int, WorkerTool] = {}
    for value in vars(module).values():
        marked = getattr(value, ATTRIBUTE, None)
        if isinstance(marked, WorkerTool):
            found.setdefault(id(marked), marked)
    return list(found.values())
