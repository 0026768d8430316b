"""The worker's backstop for the host's deadlines.

The host owns every call's timeout: when it passes, the host cancels the call, which stops the
tool here. The host also tells the worker the deadline (the request's ``timeout_ms``), and the
worker stops a call still running ``GRACE_MS`` after it, for a host that never cancels (one
that hangs). One task looks at the calls in flight a few times a second instead of a timer
per call: a timer costs a busy worker a few microseconds of its one CPU on every call, and a
backstop a second late has no use for precision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from toolbridge.core.errors import ErrorType
from toolbridge.worker.context import ToolContext
from toolbridge.worker.failures import CallFailure

T = TypeVar("T")

#: How long after the host's deadline a call still running is stopped by the worker itself.
GRACE_MS = 1000
#: How often the calls in flight are looked at; bounds how late after the grace a call stops.
CHECK_INTERVAL_S = 0.1


class Backstops:
    """The calls in flight that have a deadline, and the task that stops those past it."""

    def __init__(self) -> None:
        self._waiting: set[Backstop] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def backstop(self, tool_name: str, timeout_ms: int, call: ToolContext) -> Backstop:
        """The backstop of a call the host gave ``timeout_ms`` (0: none) from now."""
        if timeout_ms > 0 and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return Backstop(self, tool_name, timeout_ms, call)

    def watch(self, backstop: Backstop) -> None:
        self._waiting.add(backstop)

    def unwatch(self, backstop: Backstop) -> None:
        self._waiting.discard(backstop)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            now = loop.time()
            for backstop in [b for b in self._waiting if b.at is not None and now >= b.at]:
                backstop.expire()


class Backstop:
    """One call's deadline (plus the grace); ``wait`` runs the tool's part of the call under it."""

    __slots__ = ("_owner", "_task", "at", "call", "expired", "timeout_ms", "tool_name")

    def __init__(self, owner: Backstops, tool_name: str, timeout_ms: int, call: ToolContext) -> None:
        self._owner = owner
        self.tool_name = tool_name
        self.timeout_ms = timeout_ms
        self.call = call
        self.expired = False
        self._task: asyncio.Task[object] | None = None
        grace_s = (timeout_ms + GRACE_MS) / 1000
        self.at = asyncio.get_running_loop().time() + grace_s if timeout_ms > 0 else None

    def passed(self) -> bool:
        return self.at is not None and asyncio.get_running_loop().time() >= self.at

    async def wait(self, pending: Awaitable[T]) -> T:
        """``pending``'s result; Timeout (the tool told to stop) when the backstop passes meanwhile."""
        if self.at is None:
            return await pending
        self._task = asyncio.current_task()
        self._owner.watch(self)
        try:
            return await pending
        except asyncio.CancelledError:
            if not self.expired:
                raise  # the host cancelled the call
            if self._task is not None:
                self._task.uncancel()
            raise self.failure() from None
        finally:
            self._owner.unwatch(self)
            self._task = None

    def expire(self) -> None:
        """Stops the call: its tool sees the cancellation, and ``wait`` fails with Timeout."""
        if self.expired:
            return
        self.expired = True
        self.call.cancelled.set()
        if self._task is not None:
            with contextlib.suppress(RuntimeError):
                self._task.cancel()

    def failure(self) -> CallFailure:
        message = (
            f"tool '{self.tool_name}' was still running {GRACE_MS} ms after the host's deadline of "
            f"{self.timeout_ms} ms, and the host had not cancelled it; the worker stopped it"
        )
        details = {"timeout": "total", "timeout_ms": str(self.timeout_ms), "backstop": "true"}
        return CallFailure(ErrorType.TIMEOUT, message, details)
