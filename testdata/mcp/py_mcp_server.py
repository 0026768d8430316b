"""An MCP server on the official Python SDK (MCPServer, formerly FastMCP), for the tests that
mount a real MCP server into the host.

    python testdata/mcp/py_mcp_server.py                      stdio
    python testdata/mcp/py_mcp_server.py --http PORT          Streamable HTTP on 127.0.0.1:PORT/mcp

With ``MCP_TEST_EVENTS=<file>``, ``slow`` appends ``started <tag>`` when it starts and
``cancelled <tag>`` when its call is cancelled, so a test can wait on those events.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

server = MCPServer("toolbridge-test-mcp", log_level="WARNING")


def record(event: str) -> None:
    path = os.environ.get("MCP_TEST_EVENTS")
    if path:
        with Path(path).open("a") as events:
            events.write(event + "\n")


class Forecast(BaseModel):
    city: str
    celsius: float


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def forecast(city: str) -> Forecast:
    """Tomorrow's temperature in a city (always 21.5)."""
    return Forecast(city=city, celsius=21.5)


@server.tool()
def greet(name: str) -> str:
    """Greets someone."""
    return f"hello {name}"


@server.tool()
def secret() -> str:
    """A tool the tests' deny lists keep out."""
    return "classified"


@server.tool()
def fail(message: str) -> str:
    """Raises with the given message."""
    raise ValueError(message)


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
async def slow(seconds: float, tag: str) -> str:
    """Sleeps, recording when it starts and when its call is cancelled."""
    record(f"started {tag}")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        record(f"cancelled {tag}")
        raise
    return "done"


@server.tool()
async def steps(count: int, ctx: Context) -> str:
    """Reports progress `count` times, then returns."""
    for step in range(1, count + 1):
        await ctx.report_progress(step, count, f"step {step}")
        await asyncio.sleep(0.01)
    return f"{count} steps"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, help="serve Streamable HTTP on this loopback port")
    args = parser.parse_args()
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.http)


if __name__ == "__main__":
    main()
