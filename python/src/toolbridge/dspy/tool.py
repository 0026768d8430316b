"""A host tool as a ``dspy.Tool``, and what an agent sees when a call fails.

Why a subclass of ``dspy.Tool``: DSPy calls ``tool(**args)`` from sync programs and
``await tool.acall(**args)`` from async ones, and a plain async function only works in the
second case unless the user turns on DSPy's async-to-sync conversion (which then fails
inside a running event loop). ``BridgeTool`` implements both entry points through a
``ToolRunner`` (the bridge) that knows how to reach the host from either, and hands each
call to the instrumentation that wraps ``dspy.Tool``'s own, when one does (tracing). A failed call
becomes an observation the agent can read; a lost session or host ends the agent's run
(``BridgeLost``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import dspy
import jsonschema
from dspy.utils import callback as dspy_callback
from pydantic import PrivateAttr, TypeAdapter

from toolbridge.client.proxy import tool_signature
from toolbridge.core.errors import (
    ErrorType,
    SessionError,
    ToolBridgeError,
    ToolCallError,
    ToolCommunicationError,
)
from toolbridge.core.specs import ToolSpec
from toolbridge.dspy.schema import ResultShape, ToolArguments, dspy_tool_args, function_parameters

F = TypeVar("F", bound=Callable[..., Any])

#: DSPy's decorator that runs the configured callbacks (on_tool_start/end) around a tool call.
with_callbacks: Callable[[F], F] = dspy_callback.with_callbacks


class ToolRunner(Protocol):
    """How a ``BridgeTool`` reaches the host: from sync code, and from async code on any loop."""

    def call_tool_blocking(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any: ...

    async def call_tool_async(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any: ...


# -- failures ------------------------------------------------------------------------------------


class ToolErrorObservation(str):
    """What an agent sees when a tool call fails: the error as text, with its type kept.

    A ``str`` so that DSPy puts it in the trajectory like any observation; ``type``
    (from the documented vocabulary, or ``InvalidArguments`` when the LM's arguments did not
    fit the tool's schema) and ``details`` stay available to code reading the trajectory.
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

    def __reduce__(self) -> tuple[Any, ...]:
        # Demos of an optimized program keep observations; they must pickle (save_program=True).
        return (type(self), (self.tool_name, self.type, str(self), self.details))

    @classmethod
    def from_error(cls, tool_name: str, error: ToolCallError) -> ToolErrorObservation:
        """The observation of a failed call: the error's text, type and details."""
        return cls(tool_name, error.type, str(error), error.details)


#: ``ToolErrorObservation.type`` when the LM's arguments were refused before the call.
INVALID_ARGUMENTS = "InvalidArguments"


class BridgeLost(BaseException):  # an interruption, like KeyboardInterrupt, not an error to handle
    """A tool call found the session gone or the host unreachable: the agent's run cannot go on.

    Every later call would fail the same way, so this is not an observation for the LM. It
    derives from ``BaseException`` (as ``asyncio.CancelledError`` does) so that DSPy's
    ``except Exception`` around each tool call (which turns an exception into an observation
    and carries on) lets it through, and the program stops. ``error`` is the
    ``SessionError`` or ``ToolCommunicationError``; ``type`` its error type.
    ``SessionAgents`` records such a run as failed and raises ``AgentRunError``.
    """

    def __init__(self, tool_name: str, error: ToolBridgeError) -> None:
        super().__init__(f"tool '{tool_name}' cannot reach its session, so the agent stops: {error}")
        self.tool_name = tool_name
        self.error = error
        self.type = error.type


# -- checking the LM's arguments -------------------------------------------------------------------


#: Python types that satisfy a JSON Schema ``type`` as jsonschema's default checker sees it
#: (a bool is not a number; a float with no fraction is an integer, checked apart).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
    "integer": (int,),
    "number": (int, float),
}


def _plain_type_check(schema: Mapping[str, Any]) -> tuple[type, ...] | None:
    """The types that pass ``schema`` when it says nothing but one JSON type; None otherwise."""
    if set(schema) - {"type", "description", "title"}:
        return None
    kind = schema.get("type")
    return _JSON_TYPES.get(kind) if isinstance(kind, str) else None


class ArgumentParser:
    """The checks ``dspy.Tool`` makes of an LM's arguments, prepared once per tool.

    Same rules and messages as DSPy's own (each argument against its JSON Schema, then parsed
    into its Python type), but DSPy rebuilds a schema validator and a pydantic model for every
    argument of every call, which cost more than the gRPC call itself. One check more than
    DSPy's: every argument in ``required`` must be there. Any failure, a schema that is not
    valid JSON Schema included, is a ``ValueError``.
    """

    def __init__(
        self,
        args: Mapping[str, Any],
        arg_types: Mapping[str, Any],
        has_kwargs: bool,
        required: Sequence[str] = (),
    ) -> None:
        self.has_kwargs = has_kwargs
        self.known = frozenset(args)
        # DSPy itself does not check for missing arguments (the call then fails wherever the
        # tool runs); a host tool's required ones are known, so a missing one never goes out.
        self.required = tuple(name for name in required if name in self.known)
        self.validators: dict[str, Any] = {}
        # Arguments whose schema is one plain type: a value of that type needs no validator
        # run (a third of a call's own cost); any other value still goes through it.
        self.plain: dict[str, tuple[type, ...]] = {}
        self.broken: dict[str, str] = {}
        for name, schema in args.items():
            kind = schema.get("type")
            if kind is None or kind == "Any":  # DSPy's rule: only typed schemas are checked locally
                continue
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as error:
                self.broken[name] = f"the tool's schema of {name} is not valid JSON Schema: {error.message}"
                continue
            self.validators[name] = cls(schema)
            plain = _plain_type_check(schema)
            if plain is not None:
                self.plain[name] = plain
        self.adapters: dict[str, TypeAdapter[Any]] = {
            name: TypeAdapter(kind) for name, kind in arg_types.items() if kind is not Any
        }
        # pydantic returns a value of exactly these types unchanged: no need to ask it.
        self.as_is: dict[str, type] = {
            name: kind for name, kind in arg_types.items() if kind in (str, int, float, bool)
        }

    def parse(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments parsed into their types; ``ValueError`` says what is wrong."""
        missing = [name for name in self.required if name not in kwargs]
        if missing:
            names = ", ".join(missing)
            raise ValueError(
                f"Arg{'s' if len(missing) > 1 else ''} {names} required by the tool but missing."
            )
        for name, value in kwargs.items():
            if name not in self.known:
                if self.has_kwargs:
                    continue
                raise ValueError(f"Arg {name} is not in the tool's args.")
            if name in self.broken:
                raise ValueError(self.broken[name])
            plain = self.plain.get(name)
            if plain is not None and type(value) in plain:  # exact type: a bool is not an int here
                continue
            validator = self.validators.get(name)
            if validator is not None:
                instance = value.model_dump() if hasattr(value, "model_dump") else value
                try:
                    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
                except Exception as failure:  # e.g. a reference the schema cannot resolve
                    raise ValueError(f"Arg {name} cannot be checked: {failure}") from failure
                if error is not None:
                    raise ValueError(f"Arg {name} is invalid: {error.message}")
        parsed: dict[str, Any] = {}
        for name, value in kwargs.items():
            adapter = self.adapters.get(name)
            if adapter is None or type(value) is self.as_is.get(name):
                parsed[name] = value
            else:
                parsed[name] = adapter.validate_python(value)
        return parsed


# -- the dspy.Tool ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binding:
    """What a ``BridgeTool`` is bound to, read once per call (a private attribute of a
    pydantic model costs a ``__getattr__`` on every read)."""

    bridge: ToolRunner
    spec: ToolSpec
    arguments: ArgumentParser
    required: tuple[str, ...]
    result: ResultShape


class BridgeTool(dspy.Tool):  # type: ignore[misc]  # dspy is untyped
    """A host tool as a ``dspy.Tool``: ``tool(**args)`` in sync code, ``await tool.acall(**args)`` in async.

    Name, description and arguments (names, JSON Schemas with references resolved, Python
    types, descriptions, which are required) come from the host's spec. ``ToolCallError``
    (the host answered: bad arguments, the tool raised, timeout, rate limit, ...) and
    arguments that do not fit the schema (checked before the call goes out, a missing required
    one included) are returned as a ``ToolErrorObservation``, so an agent reads the failure
    and carries on. A lost session or an unreachable host raises
    ``BridgeLost``, which ends the agent's run. A streaming tool returns the list of its
    chunks. Where the tool's output schema says ``number``, integers come back as floats.

    Copies (``copy.deepcopy``, what DSPy's optimizers make of a program) share the bridge.
    A pickled tool (``program.save(path, save_program=True)``) keeps its spec and
    description but no bridge; ``bridge.attach(program)`` binds a loaded program's tools.
    """

    # dspy.Tool is a pydantic model: runtime-only attributes must be private attributes.
    _binding: Binding = PrivateAttr()

    def __init__(self, bridge: ToolRunner, spec: ToolSpec, *, desc: str | None = None) -> None:
        arguments = dspy_tool_args(spec)
        super().__init__(
            _blocking_function(bridge, spec),
            name=spec.name,
            desc=desc or spec.description or f"Host tool {spec.name}",
            args=arguments.args,
            arg_types=arguments.arg_types,
            arg_desc=arguments.arg_desc,
        )
        self._bind(bridge, spec, arguments)

    def _bind(self, bridge: ToolRunner, spec: ToolSpec, arguments: ToolArguments) -> None:
        self._binding = Binding(
            bridge,
            spec,
            ArgumentParser(self.args, self.arg_types, self.has_kwargs, arguments.required),
            arguments.required,
            ResultShape(spec.output_schema),
        )

    @property
    def spec(self) -> ToolSpec:
        """The host's spec of the tool (limits, streaming flag, full JSON Schema, ...)."""
        return self._binding.spec

    @property
    def required(self) -> tuple[str, ...]:
        """The arguments the host requires: no default and not optional."""
        return self._binding.required

    # -- calls

    def __call__(self, **kwargs: Any) -> Any:
        wrapper = _instrumentation_of("__call__")
        if wrapper is None:
            return self._call_blocking(**kwargs)
        return wrapper(self._call_blocking, self, (), kwargs)

    async def acall(self, **kwargs: Any) -> Any:
        wrapper = _instrumentation_of("acall")
        if wrapper is None:
            return await self._call_async(**kwargs)
        return await wrapper(self._call_async, self, (), kwargs)

    @with_callbacks
    def _call_blocking(self, **kwargs: Any) -> Any:
        bound = self._binding
        parsed = _parse_or_observe(bound, kwargs)
        if isinstance(parsed, ToolErrorObservation):
            return parsed
        try:
            return bound.result.apply(bound.bridge.call_tool_blocking(bound.spec, parsed))
        except ToolCallError as error:
            return ToolErrorObservation.from_error(bound.spec.name, error)
        except (SessionError, ToolCommunicationError) as error:
            raise BridgeLost(bound.spec.name, error) from error

    @with_callbacks
    async def _call_async(self, **kwargs: Any) -> Any:
        bound = self._binding
        parsed = _parse_or_observe(bound, kwargs)
        if isinstance(parsed, ToolErrorObservation):
            return parsed
        try:
            return bound.result.apply(await bound.bridge.call_tool_async(bound.spec, parsed))
        except ToolCallError as error:
            return ToolErrorObservation.from_error(bound.spec.name, error)
        except (SessionError, ToolCommunicationError) as error:
            raise BridgeLost(bound.spec.name, error) from error

    # -- what the LM is shown

    def format_as_litellm_function_call(self) -> dict[str, Any]:
        """The tool for native function calling; ``required`` lists what the host requires.

        (DSPy's own lists every argument without a default, an optional one included, which
        makes the LM invent a value for it.)
        """
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.desc,
                "parameters": function_parameters(self.args, [n for n in self.required if n in self.args]),
            },
        }

    def __str__(self) -> str:
        # How ReAct lists the tool in its instructions: DSPy's text, and which arguments are required.
        if not self.args:
            return str(super().__str__())
        required = [name for name in self.required if name in self.args]
        which = f"Required arguments: {', '.join(required)}." if required else "Every argument is optional."
        return f"{super().__str__()} {which}"

    # -- copies, pickling, re-attaching

    def __deepcopy__(self, memo: dict[int, Any]) -> BridgeTool:
        # The description and argument schemas are the copy's own (an optimizer may rewrite
        # them); the bridge, spec and prepared checks are shared, like a connection.
        copied: BridgeTool = self.model_copy()
        copied.desc = self.desc
        copied.args = copy.deepcopy(self.args, memo)
        copied.arg_desc = dict(self.arg_desc or {})
        return copied

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).detached, (self.spec, self.desc))

    @classmethod
    def detached(cls, spec: ToolSpec, desc: str | None = None) -> BridgeTool:
        """A tool bound to no bridge, as a loaded program holds it until ``bridge.attach(program)``.

        Calling it raises ``BridgeLost`` (a ``SessionError`` that says to attach it).
        """
        return cls(DetachedRunner(), spec, desc=desc)

    def attach(self, bridge: ToolRunner, spec: ToolSpec) -> None:
        """Binds the tool to ``bridge`` and the host's current ``spec`` of it; keeps its description.

        Argument descriptions an optimizer rewrote are kept for the arguments that still exist.
        """
        arguments = dspy_tool_args(spec)
        previous: Mapping[str, Any] = getattr(self, "args", None) or {}
        for name, schema in arguments.args.items():
            description = previous.get(name, {}).get("description")
            if description:
                schema["description"] = description
        self.func = _blocking_function(bridge, spec)
        self.args = arguments.args
        self.arg_types = arguments.arg_types
        self.arg_desc = arguments.arg_desc
        self._bind(bridge, spec, arguments)


def _instrumentation_of(method: str) -> Callable[..., Any] | None:
    """The wrapper an instrumentation put around ``dspy.Tool.<method>`` (OpenInference's DSPy one), if any.

    ``BridgeTool`` has its own ``__call__`` and ``acall``, which such a wrapper never sees: they
    hand it their call instead, so the tool gets the same span (and the host's spans nest under
    it) as any ``dspy.Tool``. Instrumentations wrap with ``wrapt``, whose function wrappers keep
    the wrapper as ``_self_wrapper``, called as ``wrapper(wrapped, instance, args, kwargs)``.
    """
    wrapper = getattr(vars(dspy.Tool).get(method), "_self_wrapper", None)
    return wrapper if callable(wrapper) else None


def _parse_or_observe(bound: Binding, kwargs: dict[str, Any]) -> dict[str, Any] | ToolErrorObservation:
    try:
        return bound.arguments.parse(kwargs)
    except (ValueError, TypeError) as error:
        # A missing or unknown argument, a wrong JSON type, a constraint not met: the LM can fix it.
        return ToolErrorObservation(bound.spec.name, INVALID_ARGUMENTS, f"invalid arguments: {error}")


class DetachedRunner:
    """The ``ToolRunner`` of a tool no bridge has attached yet: every call says what to do."""

    def call_tool_blocking(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
        raise self.not_attached(spec)

    async def call_tool_async(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
        raise self.not_attached(spec)

    @staticmethod
    def not_attached(spec: ToolSpec) -> SessionError:
        return SessionError(
            f"tool '{spec.name}' was loaded from a saved program and has no bridge: "
            "call bridge.attach(program) with an initialized GRPCToolBridge first",
            ErrorType.SESSION_NOT_FOUND,
        )


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
