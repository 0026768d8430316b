"""The servers under test, each started as its own process on loopback, and the callers that drive them.

Every peer is reached through a ``Caller``: ``call(tool, kwargs)`` returns the tool's result as a
Python value, so each workload runs the same loop against every peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import TextContent

from toolbridge import SyncToolBridgeClient, ToolBridgeClient
from toolbridge.launch.host import HostProcess, launch_host

REPO = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO / "bench" / "peers"
TOOLS_MODULE = PEERS_DIR / "toolbridge-tools.ts"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STARTUP_TIMEOUT_MS = 60_000


class BenchError(RuntimeError):
    """A peer did not start, or answered something other than what the tool should return."""


class Caller(Protocol):
    name: str

    async def call(self, tool: str, kwargs: dict[str, Any]) -> Any: ...


def node_command(script: Path, *args: str) -> list[str]:
    """Runs a TypeScript file of bench/peers with tsx, as the examples do."""
    return [shutil.which("node") or "node", "--import", "tsx", str(script), *args]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time process ``pid`` has used so far, from the scheduler's nanosecond counts of its
    threads (``/proc/<pid>/task/*/schedstat``, Linux): the clock ticks of ``/proc/<pid>/stat``
    are 10 ms, more than a few hundred small calls cost."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


@dataclass
class SpawnedServer:
    """A peer server process that printed ``listening on <target>``."""

    target: str
    process: asyncio.subprocess.Process
    log: Any

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.log.close()


async def spawn_server(command: list[str]) -> SpawnedServer:
    log = tempfile.TemporaryFile()  # noqa: SIM115  # closed by SpawnedServer.stop
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT_MS / 1000)
    except TimeoutError:
        line = b""
    text = line.decode().strip()
    if not text.startswith("listening on "):
        if process.returncode is None:
            process.kill()
        await process.wait()
        log.seek(0)
        raise BenchError(
            f"{' '.join(command)} did not start: {text!r}\n{log.read().decode(errors='replace')}"
        )
    return SpawnedServer(text.removeprefix("listening on "), process, log)


def toolbridge_host(
    flags: dict[str, str | int] | None = None,
    *,
    env: dict[str, str] | None = None,
    checkout: Path = REPO,
) -> contextlib.AbstractAsyncContextManager[HostProcess]:
    """The real host CLI serving bench/peers/toolbridge-tools.ts, this repository's or another
    ``checkout``'s (built) with its own tools module, e.g. to compare with another branch."""
    options: dict[str, str | int] = {
        "max-batch-size": 1000,
        "max-message-bytes": MAX_MESSAGE_BYTES,
        "log-level": "warn",
        **(flags or {}),
    }
    cli = None if checkout == REPO else ["node", str(checkout / "packages" / "server" / "dist" / "cli.js")]
    return launch_host(
        [checkout / TOOLS_MODULE.relative_to(REPO)],
        options,
        cli=cli,
        cwd=checkout,
        startup_timeout_ms=STARTUP_TIMEOUT_MS,
        env=env,
    )


@contextlib.asynccontextmanager
async def spawned(command: list[str]) -> AsyncIterator[SpawnedServer]:
    server = await spawn_server(command)
    try:
        yield server
    finally:
        await server.stop()


def grpc_echo_command(listen: str = "127.0.0.1:0") -> list[str]:
    return node_command(PEERS_DIR / "grpc-echo.ts", "--listen", listen)


def pingpong_command(path: str) -> list[str]:
    return node_command(PEERS_DIR / "pingpong.ts", "--listen", path)


def mcp_http_command() -> list[str]:
    return node_command(PEERS_DIR / "mcp-server.ts", "--transport", "http")


def mcp_stdio_parameters() -> StdioServerParameters:
    command = node_command(PEERS_DIR / "mcp-server.ts", "--transport", "stdio")
    return StdioServerParameters(command=command[0], args=command[1:], cwd=str(REPO))


class GrpcCaller:
    """ToolBridgeClient.call_tool: the same client code for the real host and the bare server."""

    def __init__(self, name: str, client: ToolBridgeClient) -> None:
        self.name = name
        self.client = client

    async def call(self, tool: str, kwargs: dict[str, Any]) -> Any:
        return await self.client.call_tool(tool, (), kwargs)


class SyncCaller:
    """SyncToolBridgeClient.call_tool, blocking right here as a script would call it.

    ``call`` blocks the event loop (a sync program has none); concurrency with this caller
    comes from threads (``workloads.timed_threads``).
    """

    def __init__(self, name: str, client: SyncToolBridgeClient) -> None:
        self.name = name
        self.client = client

    async def call(self, tool: str, kwargs: dict[str, Any]) -> Any:
        return self.client.call_tool(tool, (), kwargs)


class McpCaller:
    """The official Python MCP client; a tool's text content is its result."""

    def __init__(self, name: str, client: Client) -> None:
        self.name = name
        self.client = client

    async def call(self, tool: str, kwargs: dict[str, Any]) -> Any:
        result = await self.client.call_tool(tool, kwargs)
        if result.is_error or not result.content or not isinstance(result.content[0], TextContent):
            raise BenchError(f"{self.name}: {tool} failed: {result.content!r}")
        return result.content[0].text


@contextlib.asynccontextmanager
async def grpc_caller(name: str, target: str, *, multiplex: bool = True) -> AsyncIterator[GrpcCaller]:
    """The asyncio client as a user gets it (``multiplex=False``: every call a unary ExecuteTool)."""
    client = ToolBridgeClient(target, max_message_bytes=MAX_MESSAGE_BYTES, multiplex=multiplex)
    try:
        await client.initialize_session()
        yield GrpcCaller(name, client)
        await client.cleanup()
    finally:
        await client.close()


@contextlib.contextmanager
def sync_caller(name: str, target: str) -> Iterator[SyncCaller]:
    """The blocking client as a user gets it."""
    with SyncToolBridgeClient(target, max_message_bytes=MAX_MESSAGE_BYTES) as client:
        client.initialize_session()
        yield SyncCaller(name, client)
        client.cleanup()


@contextlib.asynccontextmanager
async def mcp_caller(name: str, server: StdioServerParameters | str) -> AsyncIterator[McpCaller]:
    async with Client(server) as client:
        yield McpCaller(name, client)
