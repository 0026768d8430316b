"""MCP in both directions, each as a ratio within one run:

- ``mcp serve``: the official Python MCP client calling a small tool on the host's MCP endpoint,
  against the same client calling the same tool on a bare MCP server of the same SDK and
  transport (``bench/peers/mcp-server.ts``, Streamable HTTP; both negotiate 2026-07-28): what
  the bridge's endpoint and engine cost an MCP client.
- ``mcp mount``: the Python toolbridge client calling that bare server's tool mounted into the
  host (stdio), against the official Python MCP client calling the same server directly over
  stdio: what mounting gives a Python program.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .peers import (
    PEERS_DIR,
    REPO,
    BenchError,
    Caller,
    grpc_caller,
    mcp_caller,
    mcp_http_command,
    mcp_stdio_parameters,
    spawned,
    toolbridge_host,
)
from .workloads import (
    COMPUTE,
    Call,
    Counts,
    Record,
    echo_call,
    timed_concurrent,
    timed_sequential,
)

#: Peer names in the figures.
HOST_ENDPOINT = "host MCP endpoint"
BARE_HTTP = "bare MCP HTTP"
MOUNTED = "toolbridge, mounted"
DIRECT_STDIO = "MCP stdio direct"
MOUNT = "peer"


class MountedCaller:
    """The toolbridge client calling the bare server's tools as the host mounted them."""

    def __init__(self, name: str, inner: Caller) -> None:
        self.name = name
        self.inner = inner

    async def call(self, tool: str, kwargs: dict[str, Any]) -> Any:
        return await self.inner.call(f"{MOUNT}__{tool}", kwargs)


def mount_config(directory: Path) -> Path:
    """A host config mounting the bare MCP server over stdio, started as its benchmark peer is."""
    node = shutil.which("node") or "node"
    args = ["--import", "tsx", str(PEERS_DIR / "mcp-server.ts"), "--transport", "stdio"]
    server = {"command": node, "args": args, "cwd": str(REPO)}
    path = directory / "mcp-host.json"
    path.write_text(json.dumps({"mcpServers": {MOUNT: server}}))
    return path


SERVE = "mcp_serve"
MOUNT_WORKLOAD = "mcp_mount"


async def mcp(counts: Counts, repeats: int, records: dict[str, Record]) -> None:
    """Both workloads; ``records`` has a Record for ``mcp_serve`` and one for ``mcp_mount``."""
    sequential_n = max(2, int(counts.sequential * counts.mcp_share))
    concurrent_n = max(2, int(counts.concurrent * counts.mcp_share))
    async with contextlib.AsyncExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="toolbridge-bench-mcp-")))
        host = await stack.enter_async_context(
            toolbridge_host({"mcp-port": 0, "config": str(mount_config(directory))})
        )
        if host.mcp_url is None:
            raise BenchError("the host printed no MCP endpoint")
        bare = await stack.enter_async_context(spawned(mcp_http_command()))
        callers: dict[str, Caller] = {
            HOST_ENDPOINT: await stack.enter_async_context(mcp_caller(HOST_ENDPOINT, host.mcp_url)),
            BARE_HTTP: await stack.enter_async_context(mcp_caller(BARE_HTTP, bare.target)),
            MOUNTED: MountedCaller(
                MOUNTED,
                await stack.enter_async_context(grpc_caller("toolbridge", host.target)),
            ),
            DIRECT_STDIO: await stack.enter_async_context(mcp_caller(DIRECT_STDIO, mcp_stdio_parameters())),
        }
        cases: list[tuple[str, Call]] = [
            ("echo 10 B", echo_call(10)),
            ("compute n=1000", COMPUTE),
        ]
        for (
            name,
            caller,
        ) in callers.items():  # warm-up, untimed; checks every peer's answers
            for case_call in (call for _, call in cases):
                for _ in range(max(2, counts.warmup // 4)):
                    case_call.check(name, await caller.call(case_call.tool, case_call.kwargs))
        pairs = {
            SERVE: (HOST_ENDPOINT, BARE_HTTP),
            MOUNT_WORKLOAD: (MOUNTED, DIRECT_STDIO),
        }
        for repeat in range(repeats):
            for workload, peers in pairs.items():
                # Which peer goes first alternates, so slow drift favours neither.
                order = peers if repeat % 2 == 0 else peers[::-1]
                record = records[workload]
                for case, call in cases:
                    for peer in order:
                        record(
                            case,
                            peer,
                            await timed_sequential(callers[peer], call, sequential_n),
                        )
                    for peer in order:
                        figures = await timed_concurrent(callers[peer], call, concurrent_n, counts.in_flight)
                        record(f"{case} x{counts.in_flight}", peer, figures)
