"""GRPCToolBridge: the host's tools as ``dspy.Tool`` objects, usable from sync and async DSPy code.

    bridge = GRPCToolBridge("127.0.0.1:50051")
    await bridge.initialize(session_id)
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools())
    prediction = await agent.acall(question="...")      # or agent(question=...) from sync code

``acall`` awaits the gRPC call on the caller's loop; a sync call (or one from another loop)
runs on the bridge's own background loop and blocks. Stored agents and their runs are
``toolbridge.agent``'s, on top of this.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import dspy

from toolbridge.client import ToolBridgeClient
from toolbridge.dspy.tool import BridgeTool
from toolbridge.errors import ErrorType, SessionError, ToolBridgeError, ToolCallError
from toolbridge.proxy import AsyncGRPCProxyTool, build_proxy_tools
from toolbridge.specs import Session, ToolSpec

T = TypeVar("T")


class GRPCToolBridge:
    """The tools of one host session, as proxies and as ``dspy.Tool`` objects.

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
        max_message_bytes: int | None = None,
    ) -> None:
        self.server_address = server_address
        self.max_message_bytes = max_message_bytes
        self.client: ToolBridgeClient | None = None
        self.session: Session | None = None
        self.specs: dict[str, ToolSpec] = {}
        #: One proxy per tool (streaming tools get the streaming proxy).
        self.tools: dict[str, AsyncGRPCProxyTool] = {}
        self._dspy_tools: dict[str, BridgeTool] = {}
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
            raise ToolCallError(
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

    async def on_owner_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Awaits a coroutine that uses the bridge's client on the loop that owns it (from any loop)."""
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
            raise ToolCallError(
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
