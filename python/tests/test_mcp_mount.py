"""MCP servers mounted into the host (``mcpServers``): a real server on the official Python SDK
(testdata/mcp/py_mcp_server.py) over stdio and over Streamable HTTP, and another host's MCP
endpoint with a token, called through the bridge by the Python client and a DSPy tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from toolbridge import HostProcess, ToolBridgeClient, ToolCallError, ToolExecutionError
from toolbridge.v1 import toolbridge_pb2 as pb

from .conftest import REPO_ROOT, spawn_host, wait_for

SERVER = REPO_ROOT / "testdata" / "mcp" / "py_mcp_server.py"


class Events:
    """The lines the MCP server appends to its events file (MCP_TEST_EVENTS)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def seen(self, line: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return line in self.path.read_text().splitlines()

        return check


def mount_config(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def stdio_server(events: Events, **options: Any) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [str(SERVER)],
        "env": {"MCP_TEST_EVENTS": str(events.path)},
        **options,
    }


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Events:
    return Events(tmp_path_factory.mktemp("mcp") / "events")


@pytest.fixture(scope="module")
async def mounting_host(
    tmp_path_factory: pytest.TempPathFactory, events: Events
) -> AsyncIterator[HostProcess]:
    config = mount_config(
        tmp_path_factory.mktemp("config") / "host.json",
        {
            "py": stdio_server(events, deny=["secret"], streaming=["steps"]),
            "calc": stdio_server(events, allow=["add", "gre*"], healthIntervalMs=0),
        },
    )
    host = await spawn_host({"config": str(config)})
    yield host
    assert await host.stop() == 0, host.output()


@pytest.fixture
async def client(mounting_host: HostProcess) -> AsyncIterator[ToolBridgeClient]:
    async with ToolBridgeClient(mounting_host.target) as connected:
        await connected.initialize_session()
        yield connected


async def mount_serving(client: ToolBridgeClient, mount: str) -> bool:
    request = pb.HealthCheckRequest(service=f"toolbridge.mcp.{mount}")
    response = await client.transport.stub.HealthCheck(request)
    return bool(response.status == pb.HealthCheckResponse.SERVING)


async def test_mounted_tools_are_namespaced_filtered_and_keep_their_schemas(client: ToolBridgeClient) -> None:
    specs = {spec.name: spec for spec in await client.list_tools()}
    assert {name for name in specs if name.startswith("py__")} == {
        "py__add",
        "py__forecast",
        "py__greet",
        "py__fail",
        "py__pid",
        "py__slow",
        "py__steps",
    }
    assert {name for name in specs if name.startswith("calc__")} == {"calc__add", "calc__greet"}
    add = specs["py__add"]
    assert add.description == "Adds two integers."
    # The server's own JSON Schema, as pydantic wrote it (a host tool's would have no titles).
    assert add.parameters_schema["title"] == "addArguments"
    assert add.parameters_schema["properties"]["a"] == {"title": "A", "type": "integer"}
    assert add.output_schema is not None
    assert add.output_schema["title"] == "addOutput"
    assert await mount_serving(client, "py")


async def test_mounted_tools_are_called_like_the_hosts_own(client: ToolBridgeClient) -> None:
    assert await client.call_tool("py__add", (), {"a": 2, "b": 3}) == {"result": 5}
    assert await client.call_tool("calc__greet", (), {"name": "Ada"}) == {"result": "hello Ada"}
    assert await client.call_tool("py__forecast", (), {"city": "Oslo"}) == {"city": "Oslo", "celsius": 21.5}
    with pytest.raises(ToolExecutionError, match="py's tool fail failed"):
        await client.call_tool("py__fail", (), {"message": "boom"})
    # The host validates against the server's schema before calling it.
    with pytest.raises(ToolCallError) as invalid:
        await client.call_tool("py__add", (), {"a": "two", "b": 3})
    assert invalid.value.type == "ValidationError"
    with pytest.raises(ToolCallError) as unknown:
        await client.call_tool("py__secret", (), {})
    assert unknown.value.type == "ToolNotFound"


async def test_progress_notifications_become_stream_chunks(client: ToolBridgeClient) -> None:
    chunks = [chunk async for chunk in client.stream_tool("py__steps", count=3)]
    assert chunks == [
        {"progress": 1, "total": 3, "message": "step 1"},
        {"progress": 2, "total": 3, "message": "step 2"},
        {"progress": 3, "total": 3, "message": "step 3"},
        {"result": "3 steps"},
    ]


async def test_a_cancelled_call_is_cancelled_on_the_mounted_server(
    client: ToolBridgeClient, events: Events
) -> None:
    call = asyncio.create_task(client.call_tool("py__slow", (), {"seconds": 60, "tag": "cancel-me"}))
    await wait_for(events.seen("started cancel-me"), 20)
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    await wait_for(events.seen("cancelled cancel-me"), 20)


async def test_a_killed_server_fails_calls_with_unavailable_and_is_restarted(
    client: ToolBridgeClient, events: Events
) -> None:
    first = (await client.call_tool("py__pid", (), {}))["result"]
    call = asyncio.create_task(client.call_tool("py__slow", (), {"seconds": 60, "tag": "killed"}))
    await wait_for(events.seen("started killed"), 20)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(ToolCallError) as lost:
        await asyncio.wait_for(call, 20)
    assert lost.value.type == "Unavailable"
    assert lost.value.details["reason"] == "mcp_server_down"

    restarted: list[int] = []

    async def answers_again() -> bool:
        try:
            restarted.append((await client.call_tool("py__pid", (), {}))["result"])
        except ToolCallError as error:
            if error.type != "Unavailable":
                raise
            return False
        return True

    await wait_for(answers_again, 30)
    assert restarted[-1] != first
    assert await mount_serving(client, "py")
    assert await client.call_tool("py__add", (), {"a": 1, "b": 1}) == {"result": 2}


async def test_a_dspy_agent_gets_mounted_tools_like_any_other(mounting_host: HostProcess) -> None:
    from toolbridge.dspy import GRPCToolBridge

    bridge = GRPCToolBridge(mounting_host.target)
    try:
        await bridge.initialize()
        forecast = bridge.get_dspy_tool("py__forecast")
        assert forecast.args["city"]["type"] == "string"
        assert await forecast.acall(city="Lima") == {"city": "Lima", "celsius": 21.5}
        await bridge.cleanup()
    finally:
        await bridge.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_http_server(port: int, events: Events) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVER),
        "--http",
        str(port),
        env={**os.environ, "MCP_TEST_EVENTS": str(events.path)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def listening() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    await wait_for(listening, 30)
    return process


async def test_an_http_server_that_goes_away_is_reconnected_when_it_is_back(tmp_path: Path) -> None:
    events = Events(tmp_path / "events")
    port = free_port()
    server = await start_http_server(port, events)
    url = f"http://127.0.0.1:{port}/mcp"
    config = mount_config(tmp_path / "host.json", {"web": {"url": url, "healthIntervalMs": 200}})
    host = await spawn_host({"config": str(config)})
    try:
        async with ToolBridgeClient(host.target) as client:
            await client.initialize_session()
            assert await client.call_tool("web__add", (), {"a": 20, "b": 22}) == {"result": 42}
            call = asyncio.create_task(client.call_tool("web__slow", (), {"seconds": 60, "tag": "http"}))
            await wait_for(events.seen("started http"), 20)
            server.kill()
            await server.wait()
            with pytest.raises(ToolCallError) as lost:
                await asyncio.wait_for(call, 20)
            assert lost.value.type == "Unavailable"

            async def down() -> bool:
                return not await mount_serving(client, "web")

            await wait_for(down, 20)
            with pytest.raises(ToolCallError) as refused:
                await client.call_tool("web__add", (), {"a": 1, "b": 1})
            assert refused.value.type == "Unavailable"

            server = await start_http_server(port, events)

            async def up() -> bool:
                return await mount_serving(client, "web")

            await wait_for(up, 30)
            assert await client.call_tool("web__add", (), {"a": 1, "b": 1}) == {"result": 2}
    finally:
        server.kill()
        await server.wait()
        assert await host.stop() == 0, host.output()


async def test_another_hosts_mcp_endpoint_is_mounted_with_a_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("mounting-host-token-0123 mounter\n")
    serving = await spawn_host({"mcp-port": 0, "auth-tokens-file": str(tokens)})
    try:
        config = {
            "upstream": {
                "url": serving.mcp_url,
                "tokenEnv": "UPSTREAM_TOKEN",
                "allow": ["add", "count"],
                "streaming": ["count"],
            },
            "anonymous": {"url": serving.mcp_url, "allow": ["add"], "connectTimeoutMs": 5000},
        }
        os.environ["UPSTREAM_TOKEN"] = "mounting-host-token-0123"
        try:
            mounting = await spawn_host({"config": str(mount_config(tmp_path / "host.json", config))})
        finally:
            del os.environ["UPSTREAM_TOKEN"]
        try:
            async with ToolBridgeClient(mounting.target) as client:
                await client.initialize_session()
                # Without an output schema an MCP result is text only: mounted, it is that text.
                assert await client.call_tool("upstream__add", (), {"a": 2, "b": 2}) == "4"
                # The upstream host's streaming tool: its chunks arrive as progress, then the whole.
                chunks = [chunk async for chunk in client.stream_tool("upstream__count", n=2)]
                assert chunks == [
                    {"progress": 1, "message": '{"i":0}'},
                    {"progress": 2, "message": '{"i":1}'},
                    '[{"i":0},{"i":1}]',
                ]
                # Without the token the upstream host refuses the connection: no tools.
                assert not await mount_serving(client, "anonymous")
                assert "anonymous__add" not in {spec.name for spec in await client.list_tools()}
        finally:
            assert await mounting.stop() == 0, mounting.output()
    finally:
        assert await serving.stop() == 0, serving.output()
