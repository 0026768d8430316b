"""GracefulShutdown: let in-flight tool calls finish before a worker exits.

shutdown = GracefulShutdown()
result = await shutdown.run(client.execute_tool("index", path))   # tracked
...
cancelled = await shutdown.shutdown(timeout_ms=30_000)             # e.g. on SIGTERM

Cancelling a tracked call cancels its RPC, and the host then aborts the tool.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from toolbridge.core.errors import ErrorType, ToolBridgeError

T = TypeVar("T")


class ShuttingDownError(ToolBridgeError):
    """A new call was started after shutdown began."""

    def __init__(self) -> None:
        super().__init__("the worker is shutting down: no new tool calls are started", ErrorType.UNAVAILABLE)


class GracefulShutdown:
    """Tracks in-flight calls; ``shutdown`` waits for them up to a timeout, then cancels the rest."""

    def __init__(self) -> None:
        self._shutdown_event = asyncio.Event()
        self._active_calls: set[asyncio.Task[Any]] = set()

    @property
    def shutting_down(self) -> bool:
        return self._shutdown_event.is_set()

    @property
    def active_count(self) -> int:
        return len(self._active_calls)

    async def wait_for_shutdown(self) -> None:
        """Returns once shutdown has begun (e.g. to stop a work loop)."""
        await self._shutdown_event.wait()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` as a tracked call; refuses (``ShuttingDownError``) once shutdown began."""
        if self.shutting_down:
            coro.close()
            raise ShuttingDownError()
        task = asyncio.ensure_future(coro)
        self._active_calls.add(task)
        try:
            return await task
        finally:
            self._active_calls.discard(task)

    #: The original guide's name for ``run``, still accepted.
    execute_with_tracking = run

    async def shutdown(self, *, timeout_ms: float = 30_000) -> int:
        """Refuses new calls, waits up to ``timeout_ms`` for the tracked ones, cancels the rest.

        Returns how many calls were cancelled. Safe to call more than once. (A timeout of its
        own, not the caller's ``asyncio.timeout``: that would cancel everything at once instead
        of letting the calls that finish in time count.)
        """
        self._shutdown_event.set()
        pending = set(self._active_calls)
        if not pending:
            return 0
        # asyncio.wait, not wait_for(gather): the latter would cancel everything on timeout
        # before we decide to, and would hide which calls finished in time.
        _, still_running = await asyncio.wait(pending, timeout=timeout_ms / 1000)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
        return len(still_running)

    def install_signal_handlers(
        self, *, timeout_ms: float = 30_000, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)
    ) -> None:
        """Starts ``shutdown(timeout_ms=...)`` when one of ``signals`` arrives (Unix event loops only)."""
        loop = asyncio.get_running_loop()
        holder: list[asyncio.Task[int]] = []

        def on_signal() -> None:
            if not holder:
                holder.append(loop.create_task(self.shutdown(timeout_ms=timeout_ms)))

        for sig in signals:
            loop.add_signal_handler(sig, on_signal)
