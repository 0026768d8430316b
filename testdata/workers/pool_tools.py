"""Python tools for the worker pool tests (packages/server/test/workers-*.test.ts).

Served by `python -m toolbridge.worker --module pool_tools` with this directory as the
working directory. Some tools keep state in the worker process (the cancellations seen), so
the tests read it back from the same worker.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import toolbridge
from toolbridge import ToolContext

#: Tool calls this worker saw cancelled: "<tool>:<marker>" entries, oldest first.
CANCELLED: list[str] = []
#: Waiting tool calls this worker started: "<tool>:<marker>" entries, oldest first.
STARTED: list[str] = []


@toolbridge.tool
def echo(value: Any) -> Any:
    """Returns its argument unchanged."""
    return value


@toolbridge.tool
async def echo_async(value: Any) -> Any:
    """Returns its argument unchanged, from a coroutine."""
    return value


@toolbridge.tool
def add(a: int, b: int = 0) -> int:
    """Adds two integers.

    Args:
        a: the first addend
        b: the second addend
    """
    return a + b


@toolbridge.tool
def as_float(x: int) -> float:
    """The integer as a float: sent as a float, integral or not."""
    return float(x)


@toolbridge.tool
def half_as_float(x: int) -> float:
    """Returns an int where a float is annotated: pydantic makes it a float, and it is sent as one."""
    return x // 2


@toolbridge.tool
def measurements() -> dict[str, Any]:
    """Integral floats and ints in a map no annotation describes: each keeps its kind."""
    return {"ratio": 1.0, "count": 3, "samples": [2.0, 2.5, 4], "nested": {"total": 10.0}}


@toolbridge.tool
def typed_measurements() -> dict[str, list[float]]:
    """Lists of floats by name, where the tool returns some ints."""
    return {"a": [1, 2.0], "b": [3]}


@toolbridge.tool
def wrong_type(x: int) -> int:
    """Breaks its own annotation: returns text where an int is promised."""
    text: Any = f"not a number: {x}"
    return text  # type: ignore[no-any-return]


@toolbridge.tool
def wrong_nested() -> dict[str, list[int]]:
    """Breaks its annotation deep inside: the path names the element."""
    bad: Any = {"a": [1, "two"]}
    return bad  # type: ignore[no-any-return]


@toolbridge.tool
def float_chunks(n: int, then_text: bool = False) -> Iterator[float]:
    """Streams 0.0 .. n-1 as floats; then_text breaks the annotation with a last chunk of text."""
    yield from (float(i) for i in range(n))
    if then_text:
        bad: Any = "not a float"
        yield bad


@toolbridge.tool(timeout_ms=300)
async def sleep_limited(ms: int, marker: str = "") -> str:
    """Sleeps past its own 300 ms timeout unless ms is short, recording a cancellation."""
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        CANCELLED.append(f"sleep_limited:{marker}")
        raise
    return "slept"


@toolbridge.tool
def whoami() -> dict[str, int]:
    """The worker's process id."""
    return {"pid": os.getpid()}


@toolbridge.tool
def fail(message: str) -> None:
    """Raises a KeyError with the message."""
    raise KeyError(message)


@toolbridge.tool
async def sleep(ms: int, marker: str = "") -> str:
    """Sleeps, recording that it started, and a cancellation if it is cancelled."""
    STARTED.append(f"sleep:{marker}")
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        CANCELLED.append(f"sleep:{marker}")
        raise
    return "slept"


@toolbridge.tool
def sleep_sync(ms: int, marker: str, context: ToolContext) -> str:
    """Waits in a thread until the time passes or the call is cancelled (recording both ends)."""
    STARTED.append(f"sleep_sync:{marker}")
    if context.cancelled.wait(ms / 1000):
        CANCELLED.append(f"sleep_sync:{marker}")
        return "cancelled"
    return "slept"


@toolbridge.tool
async def count(n: int, delay_ms: int = 0, marker: str = "") -> AsyncIterator[int]:
    """Streams 0..n-1, pausing between chunks."""
    try:
        for i in range(n):
            yield i
            await asyncio.sleep(delay_ms / 1000)
    except (asyncio.CancelledError, GeneratorExit):
        # Cancelled inside its sleep, or closed at a yield when the cancel finds it parked there.
        CANCELLED.append(f"count:{marker}")
        raise


@toolbridge.tool
def count_sync(n: int, delay_ms: int = 0, marker: str = "") -> Iterator[int]:
    """Streams 0..n-1 from a plain generator, pausing between chunks."""
    try:
        for i in range(n):
            yield i
            time.sleep(delay_ms / 1000)
    except GeneratorExit:
        CANCELLED.append(f"count_sync:{marker}")
        raise


@toolbridge.tool
def cancellations() -> list[str]:
    """The cancellations this worker has seen."""
    return list(CANCELLED)


@toolbridge.tool
def started() -> list[str]:
    """The waiting calls (sleep, sleep_sync) this worker has started."""
    return list(STARTED)


@toolbridge.tool
def threads() -> int:
    """Threads alive in the worker."""
    return threading.active_count()


@toolbridge.tool
def spawn_child(seconds: int = 60) -> int:
    """Starts a `sleep` process (in the worker's process group) and returns its pid."""
    return subprocess.Popen(["sleep", str(seconds)]).pid
