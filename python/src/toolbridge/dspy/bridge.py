"""DSPy integration: the host's tools as ``dspy.Tool`` objects, usable from sync and async DSPy code.

    bridge = GRPCToolBridge("127.0.0.1:50051")
    await bridge.initialize(session_id)
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools())
    prediction = await agent.acall(question="...")      # or agent(question=...) from sync code

Importing this module imports ``dspy``; ``import toolbridge`` alone does not.

Why a subclass of ``dspy.Tool``: DSPy calls ``tool(**args)`` from sync programs and
``await tool.acall(**args)`` from async ones, and a plain async function only works in the
second case unless the user turns on DSPy's async-to-sync conversion (which then fails
inside a running event loop). ``BridgeTool`` implements both entry points: ``acall`` awaits
the gRPC call on the caller's loop, ``__call__`` runs it on the bridge's own background
loop and blocks. A failed call becomes an observation the agent can read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

import dspy
import jsonschema
from dspy.utils import callback as dspy_callback
from pydantic import PrivateAttr, TypeAdapter

from toolbridge.client import ToolBridgeClient
from toolbridge.errors import ErrorType, SessionError, ToolBridgeError, ToolExecutionError
from toolbridge.proxy import AsyncGRPCProxyTool, build_proxy_tools, tool_signature
from toolbridge.specs import Session, ToolSpec

if TYPE_CHECKING:
    from toolbridge.agent.model import AgentDefinition, AgentRun, AgentStore, ProgressEvent

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: DSPy's decorator that runs the configured callbacks (on_tool_start/end) around a tool call.
with_callbacks: Callable[[F], F] = dspy_callback.with_callbacks

#: The name dspy.ReAct gives its own "done" tool; a host tool cannot use it inside an agent.
REACT_FINISH_TOOL = "finish"

_SIMPLE_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}


# -- JSON Schema -> what DSPy shows the LM ------------------------------------------------------


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


# -- tool errors as observations ------------------------------------------------------------------


class ToolErrorObservation(str):
    """What an agent sees when a tool call fails: the error as text, with its type kept.

    A ``str`` so that DSPy puts it in the trajectory like any observation; ``error_type``
    (from the documented vocabulary, or ``InvalidArguments`` when DSPy rejected the LM's
    arguments before calling) and ``details`` stay available to code reading the trajectory.
    """

    tool_name: str
    error_type: str
    details: dict[str, Any]

    def __new__(
        cls, tool_name: str, error_type: str, message: str, details: Mapping[str, Any] | None = None
    ) -> ToolErrorObservation:
        prefix = f"Tool '{tool_name}' failed"
        text = message if message.startswith(prefix) else f"{prefix} ({error_type}): {message}"
        observation = super().__new__(cls, text)
        observation.tool_name = tool_name
        observation.error_type = error_type
        observation.details = dict(details or {})
        return observation

    @classmethod
    def from_error(cls, tool_name: str, error: ToolExecutionError) -> ToolErrorObservation:
        return cls(tool_name, error.error_type, str(error), error.details)


#: ``ToolErrorObservation.error_type`` when DSPy refused the LM's arguments before the call.
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
    the host's spec. ``ToolExecutionError`` (the host answered: bad arguments, the tool raised,
    timeout, rate limit, ...) and arguments DSPy rejects are returned as a
    ``ToolErrorObservation`` instead of raised, so an agent reads the failure and carries on.
    Transport and session failures (``ToolCommunicationError``, ``SessionError``) still raise:
    retrying the next step cannot fix them. A streaming tool returns the list of its chunks.
    """

    # dspy.Tool is a pydantic model: runtime-only attributes must be private attributes.
    _bridge: GRPCToolBridge = PrivateAttr()
    _spec: ToolSpec = PrivateAttr()
    _arguments: ArgumentParser = PrivateAttr()

    def __init__(self, bridge: GRPCToolBridge, spec: ToolSpec) -> None:
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
        except ToolExecutionError as error:
            return ToolErrorObservation.from_error(self.spec.name, error)

    @with_callbacks
    async def acall(self, **kwargs: Any) -> Any:
        parsed = self._parse_or_observe(kwargs)
        if isinstance(parsed, ToolErrorObservation):
            return parsed
        try:
            return await self._bridge.call_tool_async(self.spec, parsed)
        except ToolExecutionError as error:
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


def _blocking_function(bridge: GRPCToolBridge, spec: ToolSpec) -> Callable[..., Any]:
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


# -- the bridge ------------------------------------------------------------------------------------


class GRPCToolBridge:
    """The tools of one host session, as proxies and as ``dspy.Tool`` objects, plus stored ReAct agents.

    ``await initialize(session_id)`` from async code, or ``initialize_sync(session_id)`` from
    sync code. The bridge's client belongs to the event loop it was initialized on (the "owner"
    loop). Tool calls from anywhere else (sync DSPy code, ``dspy.Parallel`` threads, another
    loop) go through a second client on a background loop that the bridge starts on first use,
    attached to the same session.
    """

    def __init__(
        self,
        server_address: str,
        *,
        store: AgentStore | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.server_address = server_address
        self.max_message_bytes = max_message_bytes
        self.client: ToolBridgeClient | None = None
        self.session: Session | None = None
        self.specs: dict[str, ToolSpec] = {}
        #: One proxy per tool, as in the guide (streaming tools get the streaming proxy).
        self.tools: dict[str, AsyncGRPCProxyTool] = {}
        self._dspy_tools: dict[str, BridgeTool] = {}
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: _BackgroundLoop | None = None
        self._background_lock = threading.Lock()

    # -- lifecycle

    @property
    def session_id(self) -> str:
        if self.session is None:
            raise SessionError(
                "the bridge has no session: call await bridge.initialize(session_id) first",
                ErrorType.SESSION_NOT_FOUND,
            )
        return self.session.session_id

    async def initialize(
        self, session_id: str = "", metadata: Mapping[str, str] | None = None
    ) -> dict[str, AsyncGRPCProxyTool]:
        """Opens (or attaches to) the session, fetches the tool specs and builds one proxy per tool.

        An empty ``session_id`` creates a session with an id the host picks (``bridge.session_id``).
        """
        if self.client is not None:
            raise ToolBridgeError(
                f"the bridge is already initialized with session {self.session_id}; "
                "use another GRPCToolBridge for another session",
                ErrorType.INTERNAL_ERROR,
            )
        client = ToolBridgeClient(self.server_address, max_message_bytes=self.max_message_bytes)
        try:
            session = await client.initialize_session(session_id, metadata)
            specs = await client.list_tools()
        except BaseException:
            await client.close()
            raise
        self.client, self.session, self._loop = client, session, asyncio.get_running_loop()
        if self._store is None:
            from toolbridge.agent.store import SessionVariableAgentStore

            self._store = SessionVariableAgentStore(client)
        self._set_specs(specs)
        return self.tools

    def initialize_sync(
        self, session_id: str = "", metadata: Mapping[str, str] | None = None
    ) -> dict[str, AsyncGRPCProxyTool]:
        """``initialize`` for sync programs: the client then lives on the bridge's background loop."""
        background = self._background_loop()
        tools = background.run(self.initialize(session_id, metadata))
        background.adopt(self.client, self.tools)
        return tools

    async def refresh_tools(self) -> dict[str, AsyncGRPCProxyTool]:
        """Fetches the specs again (e.g. after the host registered a session tool)."""
        client = self._require_client()
        self._set_specs(await self.on_owner_loop(client.list_tools()))
        return self.tools

    async def close(self) -> None:
        """Closes the bridge's connections; the session stays alive on the host (``cleanup`` ends it)."""
        client, self.client = self.client, None
        background, self._background = self._background, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()
        if background is not None:
            # Closes its own client (or the bridge's, after initialize_sync) on its loop.
            await asyncio.to_thread(background.stop)

    def close_sync(self) -> None:
        """``close`` for sync programs (after ``initialize_sync``)."""
        self.client = None
        background, self._background = self._background, None
        if background is not None:
            background.stop()

    async def cleanup(self) -> None:
        """Ends the session on the host (its tools and variables go with it) and closes the bridge."""
        client = self._require_client()
        await self.on_owner_loop(client.cleanup())
        await self.close()

    def cleanup_sync(self) -> None:
        """``cleanup`` for sync programs (after ``initialize_sync``)."""
        client = self._require_client()
        self._background_loop().run(client.cleanup())
        self.close_sync()

    async def __aenter__(self) -> GRPCToolBridge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- tools

    def get_dspy_tools(self, tool_names: Sequence[str] | None = None) -> list[dspy.Tool]:
        """The session's tools (or the named ones, in that order) as ``dspy.Tool`` objects."""
        self._require_client()
        if tool_names is None:
            return list(self._dspy_tools.values())
        return [self.get_dspy_tool(name) for name in tool_names]

    def get_dspy_tool(self, name: str) -> BridgeTool:
        self._require_client()
        try:
            return self._dspy_tools[name]
        except KeyError:
            known = ", ".join(sorted(self._dspy_tools)) or "none"
            raise ToolExecutionError(
                name, ErrorType.TOOL_NOT_FOUND, f"the session has no tool '{name}'; its tools: {known}"
            ) from None

    async def call_tool_async(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
        """Calls a tool from async code on any loop; a streaming tool returns its chunks as a list."""
        self._require_client()
        if asyncio.get_running_loop() is self._loop:
            return await self.tools[spec.name](**kwargs)
        background = self._background_loop(attach=True)
        return await asyncio.wrap_future(background.submit(background.call(spec, kwargs)))

    def call_tool_blocking(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
        """Calls a tool from sync code and waits; safe from any thread, even one running an event loop."""
        self._require_client()
        background = self._background_loop(attach=True)
        return background.run(background.call(spec, kwargs))

    # -- agents: definitions and runs live in the session (toolbridge.agent)

    @property
    def store(self) -> AgentStore:
        """Where agents and runs are kept: the session's variables unless another store was given."""
        if self._store is None:
            raise SessionError(
                "the bridge has no session yet, so no agent store: "
                "call await bridge.initialize(session_id) first",
                ErrorType.SESSION_NOT_FOUND,
            )
        return self._store

    def build_react_agent(self, definition: AgentDefinition) -> dspy.ReAct:
        """A live ``dspy.ReAct`` from a definition, with this session's tools."""
        from toolbridge.agent.model import AgentDefinitionError

        missing = [name for name in definition.tool_names if name not in self._dspy_tools]
        if missing:
            raise AgentDefinitionError(
                f"agent {definition.agent_id} uses tools the session does not have: {', '.join(missing)}; "
                f"its tools: {', '.join(sorted(self._dspy_tools)) or 'none'}"
            )
        return dspy.ReAct(
            definition.dspy_signature(),
            tools=[self._dspy_tools[name] for name in definition.tool_names],
            max_iters=definition.max_iters,
        )

    async def create_react_agent(
        self,
        signature: str | type[dspy.Signature],
        tool_names: Sequence[str] | None = None,
        max_iters: int = 5,
        *,
        instructions: str | None = None,
        agent_id: str | None = None,
    ) -> str:
        """Defines a ReAct agent over the session's tools and stores it in the session; returns its id.

        Any worker attached to the session can then run it (``run_agent(agent_id, ...)``).
        ``tool_names`` defaults to every tool the session has now.
        """
        from toolbridge.agent.model import AgentDefinition

        self._require_client()
        names = list(tool_names) if tool_names is not None else list(self._dspy_tools)
        for name in names:
            self.get_dspy_tool(name)
        definition = AgentDefinition.create(
            signature, names, max_iters, instructions=instructions, agent_id=agent_id
        )
        self.build_react_agent(definition)  # fails here rather than in some later worker
        await self.on_owner_loop(self.store.save_definition(definition))
        return definition.agent_id

    async def load_react_agent(self, agent_id: str) -> dspy.ReAct:
        """The stored agent, rebuilt as a ``dspy.ReAct`` to run (or optimize) as you like."""
        definition = await self.on_owner_loop(self.store.load_definition(agent_id))
        return self.build_react_agent(definition)

    async def run_agent(self, agent_id: str, /, **inputs: Any) -> AgentRun:
        """Runs a stored agent with DSPy's configured LM; the run and its steps are recorded in the session.

        Keyword arguments are the signature's input fields.
        """
        return await self.run_agent_with(agent_id, inputs)

    async def run_agent_with(
        self,
        agent_id: str,
        inputs: Mapping[str, Any],
        *,
        lm: dspy.BaseLM | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> AgentRun:
        """``run_agent`` with options: an LM for this run only, and a callback for live progress."""
        definition = await self.on_owner_loop(self.store.load_definition(agent_id))
        return await self.run_definition(definition, inputs, lm=lm, on_progress=on_progress)

    async def run_definition(
        self,
        definition: AgentDefinition,
        inputs: Mapping[str, Any],
        *,
        lm: dspy.BaseLM | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> AgentRun:
        """Runs an agent from its definition, stored or not; the run is recorded if the bridge has a store.

        Raises ``AgentRunError`` (with the failed run) when the run fails, e.g. the LM call fails.
        """
        from toolbridge.agent.runner import run_definition

        self._require_client()
        return await run_definition(
            self, definition, inputs, store=self._store, lm=lm, on_progress=on_progress
        )

    async def on_owner_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Awaits a coroutine that uses the bridge's client (or store) on the loop that owns it."""
        if asyncio.get_running_loop() is self._loop:
            return await coroutine
        background = self._background
        if background is not None and background.loop is self._loop:
            return await asyncio.wrap_future(background.submit(coroutine))
        coroutine.close()
        raise ToolBridgeError(
            "the bridge's client belongs to the event loop that ran initialize(); call this from that loop",
            ErrorType.INTERNAL_ERROR,
        )

    # -- internals

    def _set_specs(self, specs: Iterable[ToolSpec]) -> None:
        client = self._require_client()
        self.specs = {spec.name: spec for spec in specs}
        self.tools = build_proxy_tools(self.specs.values(), client)
        self._dspy_tools = {name: BridgeTool(self, spec) for name, spec in self.specs.items()}
        if self._background is not None:
            self._background.specs_changed(self.specs.values())

    def _require_client(self) -> ToolBridgeClient:
        if self.client is None:
            raise SessionError(
                "the bridge is not initialized (or was closed): call await bridge.initialize(session_id) "
                "or bridge.initialize_sync(session_id) first",
                ErrorType.SESSION_NOT_FOUND,
            )
        return self.client

    def _background_loop(self, *, attach: bool = False) -> _BackgroundLoop:
        with self._background_lock:
            if self._background is None:
                self._background = _BackgroundLoop()
            background = self._background
        if attach:
            background.attach(self)
        return background


class _BackgroundLoop:
    """An event loop on a daemon thread, with a client attached to the bridge's session.

    gRPC aio objects belong to the loop that created them, so sync callers (and callers on other
    loops) cannot use the bridge's client; they hand their calls to this loop instead.
    """

    def __init__(self) -> None:
        self.client: ToolBridgeClient | None = None
        self.tools: dict[str, AsyncGRPCProxyTool] = {}
        self._owns_client = False
        self._attach_lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="toolbridge-dspy", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise ToolBridgeError(
                "a blocking tool call was made on the bridge's own event loop: "
                "use await tool.acall(...) there",
                ErrorType.INTERNAL_ERROR,
            )
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = self.submit(coroutine)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C while waiting: cancel the call, so the host stops the tool
            raise

    def adopt(self, client: ToolBridgeClient | None, tools: dict[str, AsyncGRPCProxyTool]) -> None:
        """Uses the bridge's own client, created on this loop by ``initialize_sync``."""
        self.client, self.tools, self._owns_client = client, tools, True

    def attach(self, bridge: GRPCToolBridge) -> None:
        with self._attach_lock:
            if self.client is None:
                self.run(self._attach(bridge))

    async def _attach(self, bridge: GRPCToolBridge) -> None:
        client = ToolBridgeClient(bridge.server_address, max_message_bytes=bridge.max_message_bytes)
        try:
            await client.initialize_session(bridge.session_id)
        except BaseException:
            await client.close()
            raise
        self.client, self._owns_client = client, True
        self.tools = build_proxy_tools(bridge.specs.values(), client)

    def specs_changed(self, specs: Iterable[ToolSpec]) -> None:
        if self.client is not None:
            self.tools = build_proxy_tools(specs, self.client)

    async def call(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
        proxy = self.tools.get(spec.name)
        if proxy is None:
            raise ToolExecutionError(
                spec.name, ErrorType.TOOL_NOT_FOUND, "the bridge has no proxy for this tool; refresh_tools()"
            )
        return await proxy(**kwargs)

    def stop(self) -> None:
        if self.client is not None and self._owns_client:
            self.run(self.client.close())
        self.client = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


__all__ = [
    "INVALID_ARGUMENTS",
    "REACT_FINISH_TOOL",
    "BridgeTool",
    "GRPCToolBridge",
    "ToolErrorObservation",
    "dspy_tool_args",
    "json_schema_type",
]
