"""Fixtures that run the real host CLI (packages/server/dist/cli.js) on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from toolbridge import HostProcess, ToolBridgeClient, start_host

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = REPO_ROOT / "testdata" / "tools" / "test-tools.ts"
CLI = REPO_ROOT / "packages" / "server" / "dist" / "cli.js"


async def spawn_host(
    flags: dict[str, str | int] | None = None, tools: list[Path] | None = None
) -> HostProcess:
    if not CLI.is_file():
        pytest.fail(f"{CLI} is missing: build the host first (make build)")
    return await start_host(tools or [TEST_TOOLS], flags, cli=["node", str(CLI)], cwd=REPO_ROOT)


@pytest.fixture(scope="session")
async def host() -> AsyncIterator[HostProcess]:
    process = await spawn_host()
    yield process
    assert await process.stop() == 0, process.output()


@pytest.fixture
async def client(host: HostProcess) -> AsyncIterator[ToolBridgeClient]:
    async with ToolBridgeClient(host.target) as connected:
        await connected.initialize_session()
        yield connected
        await connected.cleanup()
