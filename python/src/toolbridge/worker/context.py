"""What a Python tool knows about the call it is serving."""

from __future__ import annotations

import contextvars
import threading

_current: contextvars.ContextVar[ToolContext] = contextvars.ContextVar("toolbridge_tool_context")


class ToolContext:
    """The call a tool is serving. Declare a parameter of this type to receive it (it is not
    part of the tool's schema), or call ``current_context()``.

    ``cancelled`` is set when the caller cancels the call or its timeout passes. Async tools
    also see ``asyncio.CancelledError``; sync functions and generators, which cannot be
    interrupted, should check ``cancelled.is_set()`` (or ``wait`` on it) between units of work.
    """

    __slots__ = ("_cancelled", "request_id", "session_id", "tool_name")

    def __init__(self, tool_name: str, session_id: str = "", request_id: str = "") -> None:
        self.tool_name = tool_name
        self.session_id = session_id
        self.request_id = request_id
        # Made on first use: most calls are never cancelled, and an Event costs a lock and a condition.
        self._cancelled: threading.Event | None = None

    @property
    def cancelled(self) -> threading.Event:
        if self._cancelled is None:
            self._cancelled = threading.Event()
        return self._cancelled

    def __repr__(self) -> str:
        return f"ToolContext(tool_name={self.tool_name!r}, session_id={self.session_id!r})"


def current_context() -> ToolContext:
    """The context of the tool call running in this task or thread; LookupError outside one."""
    return _current.get()


def enter(context: ToolContext) -> contextvars.Token[ToolContext]:
    return _current.set(context)


def leave(token: contextvars.Token[ToolContext]) -> None:
    _current.reset(token)
