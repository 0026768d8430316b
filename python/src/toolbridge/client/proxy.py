"""Proxy tools: a host tool as a local callable with its name, description and schema.

``AsyncGRPCProxyTool`` calls through a ``ToolBridgeClient`` (``await tool(...)``), its twin
``SyncGRPCProxyTool`` through a ``SyncToolBridgeClient`` (``tool(...)``). DSPy (and anything
that introspects callables) sees the host's parameters through ``__signature__``; the JSON
Schema is on ``parameters_schema``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Generator, Iterable
from contextlib import aclosing, closing
from typing import Any, Protocol

from toolbridge.core.specs import ToolSpec


class ToolCaller(Protocol):
    """What a proxy calls through: a ``ToolBridgeClient``, or anything with its two calling methods."""

    async def execute_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Any: ...

    def stream_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]: ...


class SyncToolCaller(Protocol):
    """What a blocking proxy calls through: a ``SyncToolBridgeClient``."""

    def execute_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Any: ...

    def stream_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Generator[Any, None, None]: ...


#: Python annotations for the JSON Schema types the host reports.
JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


class ProxyTool:
    """What every proxy shows of its host tool: name, description, JSON Schema and signature."""

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.__name__ = spec.name
        self.description = spec.description
        self.__doc__ = spec.description or f"Host tool {spec.name}"
        self.parameters_schema = spec.parameters_schema
        self.__signature__ = tool_signature(spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}{self.__signature__})"


class AsyncGRPCProxyTool(ProxyTool):
    """Calls one host tool: ``await tool(*args, **kwargs)`` returns its result."""

    def __init__(self, spec: ToolSpec, client: ToolCaller) -> None:
        super().__init__(spec)
        self.client = client

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.client.execute_tool(self.name, *args, **kwargs)


class StreamingGRPCProxyTool(AsyncGRPCProxyTool):
    """A streaming host tool: ``stream(...)`` yields chunks; calling it returns them all as a list."""

    def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        return self.client.stream_tool(self.name, *args, **kwargs)

    async def collect(self, *args: Any, **kwargs: Any) -> list[Any]:
        async with aclosing(self.stream(*args, **kwargs)) as chunks:
            return [chunk async for chunk in chunks]

    async def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        return await self.collect(*args, **kwargs)


class SyncGRPCProxyTool(ProxyTool):
    """``AsyncGRPCProxyTool`` for blocking code: ``tool(*args, **kwargs)`` returns the result."""

    def __init__(self, spec: ToolSpec, client: SyncToolCaller) -> None:
        super().__init__(spec)
        self.client = client

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.execute_tool(self.name, *args, **kwargs)


class SyncStreamingGRPCProxyTool(SyncGRPCProxyTool):
    """``StreamingGRPCProxyTool`` for blocking code: ``stream(...)`` yields chunks; calling it
    returns them all as a list."""

    def stream(self, *args: Any, **kwargs: Any) -> Generator[Any, None, None]:
        return self.client.stream_tool(self.name, *args, **kwargs)

    def collect(self, *args: Any, **kwargs: Any) -> list[Any]:
        with closing(self.stream(*args, **kwargs)) as chunks:
            return list(chunks)

    def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        return self.collect(*args, **kwargs)


def build_proxy_tools(specs: Iterable[ToolSpec], client: ToolCaller) -> dict[str, AsyncGRPCProxyTool]:
    """One proxy per spec, by tool name."""
    return {
        spec.name: (StreamingGRPCProxyTool if spec.streaming else AsyncGRPCProxyTool)(spec, client)
        for spec in specs
    }


def build_sync_proxy_tools(specs: Iterable[ToolSpec], client: SyncToolCaller) -> dict[str, SyncGRPCProxyTool]:
    """One blocking proxy per spec, by tool name."""
    return {
        spec.name: (SyncStreamingGRPCProxyTool if spec.streaming else SyncGRPCProxyTool)(spec, client)
        for spec in specs
    }


def annotation_for(json_type: str) -> Any:
    return JSON_TYPES.get(json_type, Any)


def tool_signature(spec: ToolSpec) -> inspect.Signature:
    """The tool's parameters in schema order; those after the first optional one are keyword-only."""
    if not all(p.name.isidentifier() for p in spec.parameters):
        return inspect.Signature([inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
    params = []
    seen_default = keyword_only = False
    for p in spec.parameters:
        default: Any = inspect.Parameter.empty
        if not p.required:
            default = p.default if p.has_default else None
            seen_default = True
        elif seen_default:
            # Python forbids a required positional parameter after one with a default.
            keyword_only = True
        kind = inspect.Parameter.KEYWORD_ONLY if keyword_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
        params.append(inspect.Parameter(p.name, kind, default=default, annotation=annotation_for(p.type)))
    return inspect.Signature(params)
