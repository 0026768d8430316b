"""The host's tools served to MCP clients, driven by the official Python MCP client (mcp 2.x)
over Streamable HTTP in both protocol eras and over stdio (``toolbridge mcp``), and by DSPy's
``dspy.Tool.from_mcp_tool``.

``mode="auto"`` negotiates the current revision (2026-07-28); ``mode="legacy"`` is a 2025
client (``initialize``, sessions), as Claude Desktop and Cursor are.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPDeprecationWarning, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceUpdatedNotification, TextContent

from toolbridge import HostProcess, SessionContext, ToolBridgeClient

from .conftest import CLI, REPO_ROOT, TEST_TOOLS, spawn_host, wait_for

MODES = ["auto", "legacy"]


@pytest.fixture(scope="module")
async def mcp_host() -> AsyncIterator[HostProcess]:
    host = await spawn_host({"mcp-port": 0, "metrics-port": 0})
    assert host.mcp_url is not None
    yield host
    assert await host.stop() == 0, host.output()


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def refusal(client: Client) -> str:
    """Why ``client`` could not list the tools (the messages of the errors it raised)."""
    try:
        async with client:
            await client.list_tools()
    except Exception as error:
        return " | ".join(leaf_messages(error))
    raise AssertionError("the tools were listed")


def leaf_messages(error: BaseException) -> list[str]:
    """The messages of the errors inside (nested) exception groups: where anyio puts them."""
    if isinstance(error, BaseExceptionGroup):
        return [message for inner in error.exceptions for message in leaf_messages(inner)]
    return [str(error)]


async def events_of(client: Client, tag: str) -> list[dict[str, str]]:
    """The test tools' own record of what happened to calls tagged ``tag`` (see test-tools.ts)."""
    events: list[dict[str, str]] = json.loads(text_of(await client.call_tool("events", {"tag": tag})))
    return events


async def cancel_a_slow_call(client: Client, tag: str) -> None:
    """Starts a slow call tagged ``tag``, cancels it once the tool runs, and waits until the tool
    saw the cancellation (aborted with Cancelled)."""

    async def started() -> bool:
        return any(event["event"] == "started" for event in await events_of(client, tag))

    async with anyio.create_task_group() as group:
        group.start_soon(client.call_tool, "slow", {"ms": 60_000, "tag": tag})
        await wait_for(started, 10, f"{tag} started")
        group.cancel_scope.cancel()

    async def aborted() -> bool:
        return {"tag": tag, "event": "aborted", "detail": "Cancelled"} in await events_of(client, tag)

    await wait_for(aborted, 10, f"{tag} was aborted with Cancelled")


@pytest.mark.parametrize("mode", MODES)
async def test_tools_are_listed_with_their_descriptions_and_schemas(mcp_host: HostProcess, mode: str) -> None:
    async with Client(mcp_host.mcp_url or "", mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    add = tools["add"]
    assert add.description == "Adds two numbers."
    assert add.input_schema["properties"]["a"] == {"type": "number", "description": "First addend"}
    assert add.input_schema["required"] == ["a", "b"]
    assert add.output_schema is None
    assert tools["measure"].output_schema is not None
    assert tools["measure"].output_schema["properties"]["count"]["type"] == "integer"
    # A streaming tool's call collects its chunks: its output is a list of its chunk schema.
    readings = tools["readings"].output_schema
    assert readings is not None
    if mode == "auto":
        assert readings["type"] == "array"
    else:  # 2025 clients need an object: the SDK wraps it as {result: [...]}
        assert readings["properties"]["result"]["type"] == "array"


@pytest.mark.parametrize("mode", MODES)
async def test_results_carry_text_always_and_structured_content_with_an_output_schema(
    mcp_host: HostProcess, mode: str
) -> None:
    async with Client(mcp_host.mcp_url or "", mode=mode) as client:
        plain = await client.call_tool("add", {"a": 2, "b": 3})
        measured = await client.call_tool("measure", {})
        streamed = await client.call_tool("readings", {})
    assert (text_of(plain), plain.structured_content, plain.is_error) == ("5", None, False)
    assert measured.structured_content is not None
    assert measured.structured_content["count"] == 3
    assert json.loads(text_of(measured)) == measured.structured_content
    chunks = [{"i": 0, "x": 1}, {"i": 1, "x": 1e300}]
    assert json.loads(text_of(streamed)) == chunks
    assert streamed.structured_content == (chunks if mode == "auto" else {"result": chunks})


@pytest.mark.parametrize("mode", MODES)
async def test_failures_are_tool_errors_naming_the_error_type(mcp_host: HostProcess, mode: str) -> None:
    async with Client(mcp_host.mcp_url or "", mode=mode) as client:
        invalid = await client.call_tool("add", {"a": "two", "b": 3})
        failed = await client.call_tool("fail", {"message": "the disk is full"})
        with pytest.raises(MCPError, match="Unknown tool 'no_such_tool'"):
            await client.call_tool("no_such_tool", {})
    assert invalid.is_error
    assert text_of(invalid).startswith("ValidationError: invalid arguments for tool 'add': 'a'")
    assert invalid.meta is not None
    assert invalid.meta["toolbridge/error"]["details"] == {"field": "a"}
    assert failed.is_error
    assert text_of(failed) == "ToolExecutionError: the disk is full"


@pytest.mark.parametrize("mode", MODES)
async def test_a_streaming_tools_chunks_arrive_as_progress(mcp_host: HostProcess, mode: str) -> None:
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with Client(mcp_host.mcp_url or "", mode=mode) as client:
        result = await client.call_tool("count", {"n": 3}, progress_callback=on_progress)
    assert seen == [(1, '{"i":0}'), (2, '{"i":1}'), (3, '{"i":2}')]
    assert json.loads(text_of(result)) == [{"i": 0}, {"i": 1}, {"i": 2}]


@pytest.mark.parametrize("mode", MODES)
async def test_a_clients_cancellation_aborts_the_tool(mcp_host: HostProcess, mode: str) -> None:
    tag = f"mcp-cancel-{mode}"
    async with Client(mcp_host.mcp_url or "", mode=mode) as client:
        await cancel_a_slow_call(client, tag)


async def test_calls_are_counted_with_the_mcp_protocol_label(mcp_host: HostProcess) -> None:
    async with Client(mcp_host.mcp_url or "") as client:
        await client.call_tool("next_ticket", {})
    text = await asyncio.to_thread(scrape, mcp_host.metrics_url or "")
    assert 'toolbridge_tool_calls_total{tool="next_ticket",protocol="mcp"} 1' in text


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_works_inside_a_toolbridge_session(mcp_host: HostProcess, mode: str) -> None:
    async with ToolBridgeClient(mcp_host.target) as bridge:
        session = (await bridge.initialize_session()).session_id
        await bridge.call_tool("register_session_echo", (), {"name": "session_echo"})
        async with Client(f"{mcp_host.mcp_url}/sessions/{session}", mode=mode) as inside:
            names = {tool.name for tool in (await inside.list_tools()).tools}
            echoed = await inside.call_tool("session_echo", {"value": [1, "two"]})
        async with Client(mcp_host.mcp_url or "", mode=mode) as outside:
            global_names = {tool.name for tool in (await outside.list_tools()).tools}
        # A 2025 client is refused at initialize, a 2026-07-28 one at its first request.
        assert "SessionNotFound" in await refusal(
            Client(f"{mcp_host.mcp_url}/sessions/no-such-session", mode=mode)
        )
        await bridge.cleanup()
    assert {"session_echo", "session_echo_stream", "add"} <= names
    assert "session_echo" not in global_names
    assert json.loads(text_of(echoed))["value"] == [1, "two"]


async def test_session_variables_are_resources_with_updates_for_subscribers(mcp_host: HostProcess) -> None:
    async with ToolBridgeClient(mcp_host.target) as bridge:
        session = (await bridge.initialize_session()).session_id
        variables = SessionContext(bridge)
        await variables.set_variable("temperature", 0.5)
        uri = f"toolbridge://sessions/{session}/variables/temperature"
        url = f"{mcp_host.mcp_url}/sessions/{session}"

        async with Client(url) as modern:
            assert [str(r.uri) for r in (await modern.list_resources()).resources] == [uri]
            read = await modern.read_resource(uri)
            assert read.contents[0].text == "0.5"  # type: ignore[union-attr]
            async with modern.listen(resource_subscriptions=[uri]) as updates:
                await variables.set_variable("temperature", 0.7)
                with anyio.fail_after(10):
                    update = await anext(aiter(updates))
            assert str(update.uri) == uri  # type: ignore[union-attr]

        seen: list[str] = []

        async def on_message(message: Any) -> None:
            if isinstance(message, ResourceUpdatedNotification):
                seen.append(str(message.params.uri))

        async with Client(url, mode="legacy", message_handler=on_message) as legacy:
            with pytest.warns(MCPDeprecationWarning):  # 2025-era API, kept for those clients
                await legacy.subscribe_resource(uri)
            await variables.set_variable("temperature", 0.9)

            async def updated() -> bool:
                return seen == [uri]

            await wait_for(updated, 10)
            assert (await legacy.read_resource(uri)).contents[0].text == "0.9"  # type: ignore[union-attr]
        await bridge.cleanup()


async def test_tokens_map_to_the_same_principals_as_grpc_calls(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice-token-0123456789 alice\nbob-token-0123456789ab bob\n")
    host = await spawn_host({"mcp-port": 0, "auth-tokens-file": str(tokens)})
    try:
        url = host.mcp_url or ""
        async with ToolBridgeClient(host.target, token="alice-token-0123456789") as alice:
            session = (await alice.initialize_session()).session_id

            def as_(token: str | None, path: str = "") -> Client:
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                http = httpx2.AsyncClient(headers=headers)
                return Client(streamable_http_client(url + path, http_client=http))

            assert "requires authentication" in await refusal(as_(None))
            async with as_("alice-token-0123456789", f"/sessions/{session}") as owner:
                assert text_of(await owner.call_tool("add", {"a": 1, "b": 1})) == "2"
            async with as_("bob-token-0123456789ab", f"/sessions/{session}") as other:
                with pytest.raises(MCPError, match="SessionNotFound"):
                    await other.list_tools()
                denied = await other.call_tool("add", {"a": 1, "b": 1})
                assert denied.is_error
                assert text_of(denied).startswith("SessionNotFound")
    finally:
        assert await host.stop() == 0, host.output()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        text: str = response.read().decode()
        return text


def mcp_command(*extra: str) -> StdioServerParameters:
    args = [str(CLI), "mcp", "--tools", str(TEST_TOOLS), "--log-level", "warn", *extra]
    return StdioServerParameters(command="node", args=args, cwd=str(REPO_ROOT))


@pytest.mark.parametrize("mode", MODES)
async def test_toolbridge_mcp_serves_over_stdio(mode: str) -> None:
    async with Client(mcp_command(), mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"add", "count", "slow"} <= names
        assert text_of(await client.call_tool("add", {"a": 20, "b": 22})) == "42"
        await cancel_a_slow_call(client, f"stdio-cancel-{mode}")


async def test_dspy_tools_from_the_hosts_mcp_tools_run_in_a_react_agent(mcp_host: HostProcess) -> None:
    import dspy

    from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn

    async with Client(mcp_host.mcp_url or "") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        add = dspy.Tool.from_mcp_tool(client, tools["add"])
        assert (add.name, add.args["a"]["type"]) == ("add", "number")
        assert await add.acall(a=1.5, b=2) == "3.5"

        lm = ScriptedLM(
            [
                tool_turn("Add them.", "add", a=20, b=22),
                finish_turn("I have the sum."),
                lambda seen: answer_turn("The tool added them.", answer=str(seen[0])),
            ]
        )
        agent = dspy.ReAct("question -> answer", tools=[add])
        with dspy.context(lm=lm):
            prediction = await agent.acall(question="What is 20 + 22?")
    assert prediction.answer == "42"
    assert prediction.trajectory["observation_0"] == "42"
