"""What a Python tool knows about the call it is serving."""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field

_current: contextvars.ContextVar[ToolContext] = contextvars.ContextVar("toolbridge_tool_context")


@dataclass
class ToolContext:
    """The call a tool is serving. Declare a parameter of this type to receive it (it is not
    part of the tool's schema), or call ``current_context()``.

    ``cancelled`` is set when the caller cancels the call or its timeout passes. Async tools
    also see ``asyncio.CancelledError``; sync functions and generators, which cannot be
    interrupted, should check ``cancelled.is_set()`` (or ``wait`` on it) between units of work.
    """

    tool_name: str
    session_id: str = ""
    request_id: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()


def current_context() -> ToolContext:
    """The context of the tool call running in this task or thread; LookupError outside one."""
    return _current.get()


def enter(context: ToolContext) -> contextvars.Token[ToolContext]:
    return _current.set(context)


def leave(token: contextvars.Token[ToolContext]) -> None:
    _current.reset(token)
