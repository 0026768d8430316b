"""GRPCToolBridge: the host's tools as ``dspy.Tool`` objects, usable from sync and async DSPy code.

    bridge = GRPCToolBridge("127.0.0.1:50051")
    await bridge.initialize(session_id)
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools())
    prediction = await agent.acall(question="...")      # or agent(question=...) from sync code

Every method works from any event loop or thread (``BridgeClients`` picks the client that may
be used there); the ``*_sync`` forms are for sync programs. Stored agents and their runs are
``toolbridge.agent``'s, on top of this.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Mapping, Sequence
from contextlib import closing
from typing import Any, TypeVar

import dspy

from toolbridge.client.aio import ToolBridgeClient
from toolbridge.client.proxy import AsyncGRPCProxyTool, StreamingGRPCProxyTool, build_proxy_tools
from toolbridge.core.errors import ErrorType, SessionError, ToolBridgeError, ToolCallError
from toolbridge.core.specs import Session, ToolSpec
from toolbridge.dspy.clients import BridgeClients, ClientWork
from toolbridge.dspy.tool import BridgeTool
from toolbridge.transport import TlsConfig

T = TypeVar("T")


class GRPCToolBridge:
    """The tools of one host session, as proxies and as ``dspy.Tool`` objects.

    ``await initialize(session_id)`` from async code, or ``initialize_sync(session_id)`` from
    sync code. Its coroutines (``refresh_tools``, ``cleanup``, ``run``, and the calls of its
    tools) work from any event loop and thread; ``run_sync`` runs any of them, or those of
    ``SessionAgents`` and its store, from sync code.

    A bridge is a connection: ``copy.deepcopy`` of anything holding it (a program, its tools)
    shares it, and it is not pickled with a program (``attach`` re-binds a loaded one).
    """

    def __init__(
        self,
        server_address: str,
        *,
        max_message_bytes: int | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        self.server_address = server_address
        self.max_message_bytes = max_message_bytes
        #: Credentials for a host with TLS or authentication, as ``ToolBridgeClient`` takes them.
        self.tls = tls
        self.token = token
        self.session: Session | None = None
        self.specs: dict[str, ToolSpec] = {}
        #: One proxy per tool over the bridge's own client (streaming tools get the streaming proxy).
        self.tools: dict[str, AsyncGRPCProxyTool] = {}
        self._dspy_tools: dict[str, BridgeTool] = {}
        self._clients = BridgeClients(server_address, max_message_bytes, tls, token)

    # -- lifecycle

    @property
    def session_id(self) -> str:
        if self.session is None:
            raise SessionError(
                "the bridge has no session: call await bridge.initialize(session_id) first",
                ErrorType.SESSION_NOT_FOUND,
            )
        return self.session.session_id

    @property
    def client(self) -> ToolBridgeClient | None:
        """The bridge's own client, usable on the loop that initialized the bridge; None before that."""
        return self._clients.owner

    async def initialize(
        self, session_id: str = "", metadata: Mapping[str, str] | None = None
    ) -> dict[str, AsyncGRPCProxyTool]:
        """Opens (or attaches to) the session, fetches the tool specs and builds one proxy per tool.

        An empty ``session_id`` creates a session with an id the host picks (``bridge.session_id``).
        """
        self._refuse_second_session()
        session = await self._clients.open(session_id, metadata)
        try:
            specs = await self.run(lambda client: client.list_tools())
        except BaseException:
            await self._clients.close()
            raise
        self.session = session
        self._set_specs(specs)
        return self.tools

    def initialize_sync(
        self, session_id: str = "", metadata: Mapping[str, str] | None = None
    ) -> dict[str, AsyncGRPCProxyTool]:
        """``initialize`` for sync programs: the bridge's client then lives on its background loop."""
        self._refuse_second_session()
        session = self._clients.open_sync(session_id, metadata)
        try:
            specs = self._clients.run_sync(lambda client: client.list_tools())
        except BaseException:
            self._clients.close_sync()
            raise
        self.session = session
        self._set_specs(specs)
        return self.tools

    async def refresh_tools(self) -> dict[str, AsyncGRPCProxyTool]:
        """Fetches the specs again (e.g. after the host registered a session tool)."""
        self._set_specs(await self.run(lambda client: client.list_tools()))
        return self.tools

    async def close(self) -> None:
        """Closes the bridge's connections; the session stays alive on the host (``cleanup`` ends it)."""
        await self._clients.close()

    def close_sync(self) -> None:
        """``close`` for sync programs."""
        self._clients.close_sync()

    async def cleanup(self) -> None:
        """Ends the session on the host (its tools and variables go with it) and closes the bridge."""
        await self.run(lambda client: client.cleanup())
        await self.close()

    def cleanup_sync(self) -> None:
        """``cleanup`` for sync programs."""
        self._clients.run_sync(lambda client: client.cleanup())
        self.close_sync()

    async def __aenter__(self) -> GRPCToolBridge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __deepcopy__(self, memo: dict[int, Any]) -> GRPCToolBridge:
        return self  # a connection to one session; what copies a program shares it

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError(
            "a GRPCToolBridge is a live connection and cannot be pickled; its BridgeTools pickle without "
            "it, and bridge.attach(program) binds a loaded program's tools to a bridge"
        )

    # -- running work anywhere

    async def run(self, work: ClientWork[T]) -> T:
        """Does ``work`` (a function of a client) with the client usable on the running loop, from any loop.

        ``await bridge.run(lambda client: client.get_variable("x"))``
        """
        return await self._clients.run(work)

    def run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine of the bridge (or of ``SessionAgents`` and its store) from sync code and waits.

        ``bridge.run_sync(agents.store.list_runs(agent_id))``. It runs on the bridge's
        background loop in a copy of the caller's context (``dspy.context`` settings apply).
        Not from the background loop itself (a tool callback): await the coroutine there.
        """
        return self._clients.run_coroutine_sync(coroutine)

    # -- tools

    def get_dspy_tools(self, tool_names: Sequence[str] | None = None) -> list[dspy.Tool]:
        """The session's tools (or the named ones, in that order) as ``dspy.Tool`` objects."""
        self._require_open()
        if tool_names is None:
            return list(self._dspy_tools.values())
        return [self.get_dspy_tool(name) for name in tool_names]

    def get_dspy_tool(self, name: str) -> BridgeTool:
        self._require_open()
        try:
            return self._dspy_tools[name]
        except KeyError:
            known = ", ".join(sorted(self._dspy_tools)) or "none"
            raise ToolCallError(
                name, ErrorType.TOOL_NOT_FOUND, f"the session has no tool '{name}'; its tools: {known}"
            ) from None

    def attach(self, program: T) -> T:
        """Binds the ``BridgeTool``s in ``program`` (a loaded ``dspy.Module``, a tool, a list) to this bridge.

        ``program = bridge.attach(dspy.load(path, allow_pickle=True))``. Each tool gets the
        session's current spec of its name (``ToolCallError`` ``ToolNotFound`` if the session
        has none) and keeps its description. Returns ``program``.
        """
        self._require_open()
        for tool in _bridge_tools(program):
            if tool.name not in self.specs:
                self.get_dspy_tool(tool.name)  # raises ToolNotFound with the session's tools
            tool.attach(self, self.specs[tool.name])
        return program

    async def call_tool_async(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
        """Calls a tool from async code on any loop; a streaming tool returns its chunks as a list."""
        return await self._clients.run(lambda client: _call(client, spec, kwargs))

    def call_tool_blocking(self, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
        """Calls a tool from sync code and waits; safe from any thread, even one running an event loop.

        The call goes through the bridge's blocking client, in the calling thread: no event loop
        and no hop to another thread.
        """
        client = self._clients.sync_client()
        if spec.streaming:
            with closing(client.stream_tool(spec.name, **kwargs)) as chunks:
                return list(chunks)
        return client.call_tool(spec.name, (), kwargs)

    # -- internals

    def _set_specs(self, specs: Iterable[ToolSpec]) -> None:
        client = self._require_open()
        self.specs = {spec.name: spec for spec in specs}
        self.tools = build_proxy_tools(self.specs.values(), client)
        self._dspy_tools = {name: BridgeTool(self, spec) for name, spec in self.specs.items()}

    def _require_open(self) -> ToolBridgeClient:
        return self._clients.require_owner()

    def _refuse_second_session(self) -> None:
        if self._clients.is_open:
            raise ToolBridgeError(
                f"the bridge is already initialized with session {self.session_id}; "
                "use another GRPCToolBridge for another session",
                ErrorType.INTERNAL_ERROR,
            )


async def _call(client: ToolBridgeClient, spec: ToolSpec, kwargs: Mapping[str, Any]) -> Any:
    if spec.streaming:
        return await StreamingGRPCProxyTool(spec, client).collect(**kwargs)
    return await client.call_tool(spec.name, (), kwargs)


def _bridge_tools(root: Any) -> list[BridgeTool]:
    """Every ``BridgeTool`` reachable from ``root`` through modules' attributes, lists, tuples and dicts."""
    found: list[BridgeTool] = []
    seen: set[int] = set()
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, BridgeTool):
            found.append(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set):
            pending.extend(item)
        elif isinstance(item, dspy.BaseModule):
            pending.extend(vars(item).values())
    return found
