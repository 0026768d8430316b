"""A host tool as a ``dspy.Tool``, and the observation an agent reads when a call fails.

Why a subclass of ``dspy.Tool``: DSPy calls ``tool(**args)`` from sync programs and
``await tool.acall(**args)`` from async ones, and a plain async function only works in the
second case unless the user turns on DSPy's async-to-sync conversion (which then fails
inside a running event loop). ``BridgeTool`` implements both entry points through a
``ToolRunner`` (the bridge) that knows how to reach the host from either. A failed call
becomes an observation the agent can read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import dspy
import jsonschema
from dspy.utils import callback as dspy_callback
from pydantic import PrivateAttr, TypeAdapter

from toolbridge.dspy.schema import dspy_tool_args
from toolbridge.errors import ToolCallError
from toolbridge.proxy import tool_signature
from toolbridge.specs import ToolSpec

F = TypeVar("F", bound=Callable[..., Any])

#: DSPy's decorator that runs the configured callbacks (on_tool_start/end) around a tool call.
with_callbacks: Callable[[F], F] = dspy_callback.with_callbacks


class ToolRunner(Protocol):
    """How a ``BridgeTool`` reaches the host: from sync code, and from async code on any loop."""

    def call_tool_blocking(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any: ...

    async def call_tool_async(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any: ...


# -- tool errors as observations ------------------------------------------------------------------


class ToolErrorObservation(str):
    """What an agent sees when a tool call fails: the error as text, with its type kept.

    A ``str`` so that DSPy puts it in the trajectory like any observation; ``type``
    (from the documented vocabulary, or ``InvalidArguments`` when DSPy rejected the LM's
    arguments before calling) and ``details`` stay available to code reading the trajectory.
    """

    tool_name: str
    type: str
    details: dict[str, Any]

    def __new__(
        cls, tool_name: str, type: str, message: str, details: Mapping[str, Any] | None = None
    ) -> ToolErrorObservation:
        prefix = f"Tool '{tool_name}' failed"
        text = message if message.startswith(prefix) else f"{prefix} ({type}): {message}"
        observation = super().__new__(cls, text)
        observation.tool_name = tool_name
        observation.type = type
        observation.details = dict(details or {})
        return observation

    @classmethod
    def from_error(cls, tool_name: str, error: ToolCallError) -> ToolErrorObservation:
        """The observation of a failed call: the error's text, type and details."""
        return cls(tool_name, error.type, str(error), error.details)


#: ``ToolErrorObservation.type`` when DSPy refused the LM's arguments before the call.
INVALID_ARGUMENTS = "InvalidArguments"


# -- the dspy.Tool ---------------------------------------------------------------------------------


class ArgumentParser:
    """The checks ``dspy.Tool`` makes of an LM's arguments, prepared once per tool.

    Same rules and messages as DSPy's own (each argument against its JSON Schema, then parsed
    into its Python type), but DSPy rebuilds a schema validator and a pydantic model for every
    argument of every call, which cost more than the gRPC call itself. A schema that is not a
    valid JSON Schema fails the calls that use it, as it does in DSPy.
    """

    def __init__(self, args: Mapping[str, Any], arg_types: Mapping[str, Any], has_kwargs: bool) -> None:
        self.has_kwargs = has_kwargs
        self.known = frozenset(args)
        self.validators: dict[str, Any] = {}
        self.broken: dict[str, jsonschema.SchemaError] = {}
        for name, schema in args.items():
            kind = schema.get("type")
            if kind is None or kind == "Any":
                continue
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as error:
                self.broken[name] = error
                continue
            self.validators[name] = cls(schema)
        self.adapters: dict[str, TypeAdapter[Any]] = {
            name: TypeAdapter(kind) for name, kind in arg_types.items() if kind is not Any
        }

    def parse(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments parsed into their types; ``ValueError`` says what is wrong."""
        for name, value in kwargs.items():
            if name not in self.known:
                if self.has_kwargs:
                    continue
                raise ValueError(f"Arg {name} is not in the tool's args.")
            if name in self.broken:
                raise self.broken[name]
            validator = self.validators.get(name)
            if validator is not None:
                instance = value.model_dump() if hasattr(value, "model_dump") else value
                error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
                if error is not None:
                    raise ValueError(f"Arg {name} is invalid: {error.message}")
        parsed: dict[str, Any] = {}
        for name, value in kwargs.items():
            adapter = self.adapters.get(name)
            parsed[name] = value if adapter is None else adapter.validate_python(value)
        return parsed


class BridgeTool(dspy.Tool):  # type: ignore[misc]  # dspy is untyped
    """A host tool as a ``dspy.Tool``: ``tool(**args)`` in sync code, ``await tool.acall(**args)`` in async.

    Name, description and arguments (names, JSON Schemas, Python types, descriptions) come from
    the host's spec. ``ToolCallError`` (the host answered: bad arguments, the tool raised,
    timeout, rate limit, ...) and arguments DSPy rejects are returned as a
    ``ToolErrorObservation`` instead of raised, so an agent reads the failure and carries on.
    Transport and session failures (``ToolCommunicationError``, ``SessionError``) still raise:
    retrying the next step cannot fix them. A streaming tool returns the list of its chunks.
    """

    # dspy.Tool is a pydantic model: runtime-only attributes must be private attributes.
    _bridge: ToolRunner = PrivateAttr()
    _spec: ToolSpec = PrivateAttr()
    _arguments: ArgumentParser = PrivateAttr()

    def __init__(self, bridge: ToolRunner, spec: ToolSpec) -> None:
        args, arg_types, arg_desc = dspy_tool_args(spec)
        super().__init__(
            _blocking_function(bridge, spec),
            name=spec.name,
            desc=spec.description or f"Host tool {spec.name}",
            args=args,
            arg_types=arg_types,
            arg_desc=arg_desc,
        )
        self._bridge = bridge
        self._spec = spec
        self._arguments = ArgumentParser(self.args, self.arg_types, self.has_kwargs)

    @with_callbacks
    def __call__(self, **kwargs: Any) -> Any:
        parsed = self._parse_or_observe(kwargs)
        if isinstance(parsed, ToolErrorObservation):
            return parsed
        try:
            return self._bridge.call_tool_blocking(self.spec, parsed)
        except ToolCallError as error:
            return ToolErrorObservation.from_error(self.spec.name, error)

    @with_callbacks
    async def acall(self, **kwargs: Any) -> Any:
        parsed = self._parse_or_observe(kwargs)
        if isinstance(parsed, ToolErrorObservation):
            return parsed
        try:
            return await self._bridge.call_tool_async(self.spec, parsed)
        except ToolCallError as error:
            return ToolErrorObservation.from_error(self.spec.name, error)

    def _parse_or_observe(self, kwargs: dict[str, Any]) -> dict[str, Any] | ToolErrorObservation:
        try:
            return self._arguments.parse(kwargs)
        except (ValueError, TypeError) as error:
            # Unknown argument, wrong JSON type, constraint not met: the LM can fix this next step.
            return ToolErrorObservation(self.spec.name, INVALID_ARGUMENTS, f"invalid arguments: {error}")

    @property
    def spec(self) -> ToolSpec:
        """The host's spec of the tool (limits, streaming flag, full JSON Schema, ...)."""
        return self._spec


def _blocking_function(bridge: ToolRunner, spec: ToolSpec) -> Callable[..., Any]:
    """The plain function behind the tool (``tool.func``): a blocking call that raises on failure.

    It carries the host's signature and annotations, so whatever introspects it (DSPy included)
    sees the tool's real parameters.
    """

    def call(**kwargs: Any) -> Any:
        return bridge.call_tool_blocking(spec, kwargs)

    signature = tool_signature(spec)
    call.__name__ = call.__qualname__ = spec.name
    call.__doc__ = spec.description
    call.__signature__ = signature  # type: ignore[attr-defined]
    call.__annotations__ = {
        name: p.annotation for name, p in signature.parameters.items() if p.kind != p.VAR_KEYWORD
    }
    return call
