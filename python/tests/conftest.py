"""Fixtures that run the real host CLI (packages/server/dist/cli.js) on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from toolbridge import HostProcess, SessionContext, ToolBridgeClient, start_host

if TYPE_CHECKING:
    # Imported where used: loading DSPy is slow, and most tests do not need it.
    from toolbridge.dspy import GRPCToolBridge

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = REPO_ROOT / "testdata" / "tools" / "test-tools.ts"
CLI = REPO_ROOT / "packages" / "server" / "dist" / "cli.js"


async def spawn_host(
    flags: dict[str, str | int] | None = None,
    tools: list[Path] | None = None,
    env: dict[str, str] | None = None,
) -> HostProcess:
    if not CLI.is_file():
        pytest.fail(f"{CLI} is missing: build the host first (make build)")
    return await start_host(tools or [TEST_TOOLS], flags, cli=["node", str(CLI)], cwd=REPO_ROOT, env=env)


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 3.0, what: str = "the condition"
) -> None:
    """Waits until ``check()`` holds, for effects that arrive asynchronously (through a watch, in
    another process); the bound only keeps a broken test from hanging the suite."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.025)
    pytest.fail(f"gave up waiting ({timeout_s} s): {what}")


@pytest.fixture(scope="session")
async def host() -> AsyncIterator[HostProcess]:
    process = await spawn_host()
    yield process
    assert await process.stop() == 0, process.output()


@pytest.fixture
async def bridge(host: HostProcess) -> AsyncIterator[GRPCToolBridge]:
    """A DSPy tool bridge on a fresh session of the shared test host."""
    from toolbridge.dspy import GRPCToolBridge

    bridge = GRPCToolBridge(host.target)
    await bridge.initialize()
    yield bridge
    await bridge.cleanup()


@pytest.fixture
async def client(host: HostProcess) -> AsyncIterator[ToolBridgeClient]:
    async with ToolBridgeClient(host.target) as connected:
        await connected.initialize_session()
        yield connected
        await connected.cleanup()


@pytest.fixture
async def ctx(client: ToolBridgeClient) -> AsyncIterator[SessionContext]:
    """A SessionContext (with its variable cache) on the ``client`` fixture's session."""
    async with SessionContext(client) as context:
        yield context


@dataclass
class Result:
    """What a ``python -m toolbridge.agent`` process did: exit code, stdout (JSON lines) and stderr."""

    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]


async def agent_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Runs ``python -m toolbridge.agent`` in a process of its own (a separate worker)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "toolbridge.agent",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # The test's own LM settings must not leak into the agent.
        env={k: v for k, v in os.environ.items() if k != "TOOLBRIDGE_LM"} | (env or {}),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture(scope="module")
async def shop_host() -> AsyncIterator[HostProcess]:
    host = await spawn_host(tools=[REPO_ROOT / "examples" / "tools" / "shop-tools.ts"])
    yield host
    assert await host.stop() == 0, host.output()
