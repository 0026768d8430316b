"""Where the bridge's calls run: its clients and the event loops they belong to.

gRPC aio objects belong to the event loop that created them, and DSPy programs run anywhere:
sync code, ``dspy.Parallel`` threads, ``asyncio.run`` in a script, a server's own loop. Every
call the bridge makes (tools, variables, the agent store, cleanup) goes through
``BridgeClients.run`` (from async code on any loop) or ``run_sync`` (from sync code in any
thread), which hand it the client that may be used from there:

- on the loop that ran ``initialize`` (the *owner* loop): the bridge's own client;
- anywhere else: a client on the bridge's background loop (a daemon thread started on first
  use), attached to the same session.

Tool calls from sync code skip the loops altogether: ``sync_client`` is a blocking
``SyncToolBridgeClient`` attached to the session, which any thread may call directly.

This is the only module that knows about loops and threads; the bridge, its tools and the
agents above it only say which work to do with a client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from toolbridge.client.aio import ToolBridgeClient
from toolbridge.client.blocking import SyncToolBridgeClient
from toolbridge.core.errors import ErrorType, SessionError, ToolBridgeError
from toolbridge.core.specs import Session
from toolbridge.transport import TlsConfig

T = TypeVar("T")

#: Work to do with a client: ``lambda client: client.execute_tool("add", a=1, b=2)``.
ClientWork = Callable[[ToolBridgeClient], Awaitable[T]]


class BackgroundLoop:
    """An event loop on a daemon thread, for calls made outside the owner's loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="toolbridge-bridge", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedules ``coroutine`` on this loop; it runs in a copy of the caller's context (dspy settings)."""
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise ToolBridgeError(
                "a blocking call was made on the bridge's own event loop: await the async form there "
                "(e.g. await tool.acall(...))",
                ErrorType.INTERNAL_ERROR,
            )
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs ``coroutine`` on this loop and waits for it."""
        future = self.submit(coroutine)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C while waiting: cancel the call, so the host stops the tool
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class BridgeClients:
    """The bridge's clients of one session, and which one serves a call from where."""

    def __init__(
        self,
        address: str,
        max_message_bytes: int | None,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        self.address = address
        self.max_message_bytes = max_message_bytes
        self.tls = tls
        self.token = token
        #: The client ``open`` created, and the loop it belongs to.
        self.owner: ToolBridgeClient | None = None
        self.owner_loop: asyncio.AbstractEventLoop | None = None
        self.session_id = ""
        self._background: BackgroundLoop | None = None
        self._background_client: ToolBridgeClient | None = None
        self._attaching: asyncio.Lock | None = None
        self._closing: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._sync_client: SyncToolBridgeClient | None = None
        self._sync_lock = threading.Lock()

    # -- opening and closing

    def new_client(self) -> ToolBridgeClient:
        return ToolBridgeClient(
            self.address, max_message_bytes=self.max_message_bytes, tls=self.tls, token=self.token
        )

    async def open(self, session_id: str, metadata: Mapping[str, str] | None) -> Session:
        """Opens (or attaches to) the session on the running loop, which becomes the owner loop."""
        client = self.new_client()
        try:
            session = await client.initialize_session(session_id, metadata)
        except BaseException:
            await client.close()
            raise
        self.owner, self.owner_loop, self.session_id = client, asyncio.get_running_loop(), session.session_id
        return session

    def open_sync(self, session_id: str, metadata: Mapping[str, str] | None) -> Session:
        """``open`` for sync code: the owner loop is the background loop."""
        return self.background().run(self.open(session_id, metadata))

    async def close(self) -> None:
        """Closes every client (the session stays on the host); usable from any loop or thread."""
        owner, owner_loop, self.owner, self.owner_loop = self.owner, self.owner_loop, None, None
        background, self._background = self._background, None
        self._close_sync_client()
        if owner is not None and owner_loop is not None:
            await _close_on(owner, owner_loop)
        if background is not None:
            await asyncio.to_thread(self._stop, background)

    def close_sync(self) -> None:
        """``close`` for sync code."""
        owner, owner_loop, self.owner, self.owner_loop = self.owner, self.owner_loop, None, None
        background, self._background = self._background, None
        self._close_sync_client()
        if owner is not None and owner_loop is not None and owner_loop.is_running():
            if owner_loop is _running_loop():
                # Sync code on the owner loop cannot wait for it; the task is kept until it ran.
                self._closing = owner_loop.create_task(owner.close())
            else:
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(owner.close(), owner_loop).result(timeout=5)
        if background is not None:
            self._stop(background)

    def _close_sync_client(self) -> None:
        with self._sync_lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()

    def _stop(self, background: BackgroundLoop) -> None:
        client, self._background_client, self._attaching = self._background_client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                background.run(client.close())
        background.stop()

    @property
    def is_open(self) -> bool:
        return self.owner is not None

    # -- running work

    async def run(self, work: ClientWork[T]) -> T:
        """Does ``work`` with the client usable from the running loop, whichever loop that is."""
        loop = asyncio.get_running_loop()
        owner = self.require_owner()
        if loop is self.owner_loop:
            return await work(owner)
        background = self.background()
        if loop is background.loop:
            return await work(await self._attached_client())
        return await asyncio.wrap_future(background.submit(self._on_background(work)))

    def run_sync(self, work: ClientWork[T]) -> T:
        """Does ``work`` from sync code in any thread (not the background loop's) and waits for it."""
        self.require_owner()
        return self.background().run(self._on_background(work))

    def run_coroutine_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs any coroutine that uses the bridge (an agent run, a store read) from sync code."""
        if self.owner is None:
            coroutine.close()
            self.require_owner()
        return self.background().run(coroutine)

    async def _on_background(self, work: ClientWork[T]) -> T:
        return await work(await self._attached_client())

    async def _attached_client(self) -> ToolBridgeClient:
        """On the background loop: the owner client if this is its loop, else one attached to the session."""
        if self.owner is not None and self.owner_loop is asyncio.get_running_loop():
            return self.owner
        if self._background_client is not None:
            return self._background_client
        if self._attaching is None:
            self._attaching = asyncio.Lock()
        async with self._attaching:
            if self._background_client is None:
                self._background_client = await self._attach()
        return self._background_client

    async def _attach(self) -> ToolBridgeClient:
        client = self.new_client()
        try:
            session = await client.initialize_session(self.session_id)
            if session.created:
                # The session ended (expired or cleaned up) and attaching just created a new, empty one.
                await client.cleanup()
                raise self._session_gone()
        except BaseException:
            await client.close()
            raise
        return client

    def sync_client(self) -> SyncToolBridgeClient:
        """A blocking client attached to the session, created on first use; any thread may call it."""
        self.require_owner()
        client = self._sync_client
        if client is not None:  # the common case, without taking the lock on every call
            return client
        with self._sync_lock:
            if self._sync_client is None:
                client = SyncToolBridgeClient(
                    self.address, max_message_bytes=self.max_message_bytes, tls=self.tls, token=self.token
                )
                try:
                    if client.initialize_session(self.session_id).created:
                        client.cleanup()
                        raise self._session_gone()
                except BaseException:
                    client.close()
                    raise
                self._sync_client = client
            return self._sync_client

    def _session_gone(self) -> SessionError:
        return SessionError(
            f"session {self.session_id} no longer exists on {self.address} (it expired or was "
            "cleaned up); initialize a new bridge",
            ErrorType.SESSION_NOT_FOUND,
            self.session_id,
        )

    def background(self) -> BackgroundLoop:
        with self._lock:
            if self._background is None:
                self._background = BackgroundLoop()
            return self._background

    def require_owner(self) -> ToolBridgeClient:
        """The owner client; ``SessionError`` when the bridge is not initialized or was closed."""
        if self.owner is None:
            raise SessionError(
                "the bridge is not initialized (or was closed): call await bridge.initialize(session_id) "
                "or bridge.initialize_sync(session_id) first",
                ErrorType.SESSION_NOT_FOUND,
            )
        return self.owner


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _close_on(client: ToolBridgeClient, loop: asyncio.AbstractEventLoop) -> None:
    """Closes ``client`` on its loop: here, on that loop if it still runs, else it is dropped."""
    if loop is asyncio.get_running_loop():
        await client.close()
    elif loop.is_running():
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(client.close(), loop))
    # A loop that has stopped (asyncio.run returned) took its channel's I/O with it: nothing to close.
