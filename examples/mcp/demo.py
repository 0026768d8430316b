"""MCP in both directions on one machine (``make demo-mcp``), all on loopback:

1. Serving: the official Python MCP client calls the shop's TypeScript tools on a host's MCP
   endpoint (Streamable HTTP), and on ``toolbridge mcp`` over stdio, as Claude Desktop would.
2. Mounting: a second host mounts an MCP server on the Python SDK (examples/mcp/weather_server.py,
   stdio) and the first host's MCP endpoint (HTTP); a Python client and a DSPy ReAct agent
   call the mounted tools like any host tool.

The agent's LM is scripted (``dspy.utils.DummyLM``): no network, no key.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import dspy
from mcp import Client, StdioServerParameters
from mcp_types import TextContent

from toolbridge import ToolBridgeClient, launch_host
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.dspy import GRPCToolBridge
from toolbridge.launch.host import find_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOP_TOOLS = REPO_ROOT / "examples" / "tools" / "shop-tools.ts"
WEATHER_SERVER = REPO_ROOT / "examples" / "mcp" / "weather_server.py"


def text(result: object) -> str:
    block = result.content[0]  # type: ignore[attr-defined]
    return block.text if isinstance(block, TextContent) else repr(block)


async def serve_over_http(url: str) -> None:
    print(f"\n1a. the Python MCP client on {url} (Streamable HTTP)")
    async with Client(url) as client:
        tools = (await client.list_tools()).tools
        print(f"    tools: {', '.join(tool.name for tool in tools)}")
        result = await client.call_tool("calculate", {"expression": "3 * 14.50 + 12"})
        print(f"    calculate('3 * 14.50 + 12') -> {text(result)}")
        failed = await client.call_tool("read_doc", {"doc_id": "pricing"})
        print(f"    read_doc('pricing') -> isError={failed.is_error}: {text(failed)[:70]}...")


async def serve_over_stdio() -> None:
    cli = find_cli(REPO_ROOT)
    command = StdioServerParameters(
        command=cli[0],
        args=[*cli[1:], "mcp", "--tools", str(SHOP_TOOLS), "--log-level", "warn"],
        cwd=str(REPO_ROOT),
    )
    shown = SHOP_TOOLS.relative_to(REPO_ROOT)
    print(f"\n1b. the Python MCP client starting `toolbridge mcp --tools {shown}` (stdio)")
    async with Client(command) as client:
        chunks: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            chunks.append(json.loads(message or "{}").get("doc", "done"))

        result = await client.call_tool("index_corpus", {"delay_ms": 0}, progress_callback=on_progress)
        print(f"    index_corpus streamed {len(chunks)} chunks as progress: {', '.join(chunks)}")
        print(f"    its result: {len(json.loads(text(result)))} chunks")


async def mount(shop_mcp_url: str, directory: Path) -> None:
    config = directory / "agent-host.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "weather": {"command": sys.executable, "args": [str(WEATHER_SERVER)]},
                    "shop": {"url": shop_mcp_url, "allow": ["calculate"]},
                }
            }
        )
    )
    print("\n2.  a second host mounting the weather MCP server (stdio) and the first host's endpoint (HTTP)")
    async with launch_host([], {"config": str(config)}, cwd=REPO_ROOT) as host:
        async with ToolBridgeClient(host.target) as client:
            await client.initialize_session()
            names = [spec.name for spec in await client.list_tools()]
            print(f"    its tools: {', '.join(names)}")
            forecast = await client.call_tool("weather__forecast", (), {"city": "Lisbon"})
            print(f"    weather__forecast(city='Lisbon') -> {forecast}")
        await run_agent(host.target)


async def run_agent(target: str) -> None:
    bridge = GRPCToolBridge(target)
    try:
        await bridge.initialize()
        tools = bridge.get_dspy_tools(["weather__forecast", "shop__calculate"])
        lm = ScriptedLM(
            [
                tool_turn("I need tomorrow's temperature in Oslo.", "weather__forecast", city="Oslo"),
                lambda seen: tool_turn(
                    "Convert it to Fahrenheit.",
                    "shop__calculate",
                    expression=f"{seen[0]['celsius']} * 9 / 5 + 32",
                ),
                finish_turn("I have both numbers."),
                lambda seen: answer_turn("From the forecast and the calculator.", answer=f"{seen[1]} °F"),
            ]
        )
        question = "How warm will Oslo be tomorrow, in Fahrenheit?"
        print(f"\n    a DSPy ReAct agent with weather__forecast and shop__calculate: {question}")
        with dspy.context(lm=lm):
            prediction = await dspy.ReAct("question -> answer", tools=tools).acall(question=question)
        trajectory = prediction.trajectory
        for step in range(2):
            args = ", ".join(f"{k}={v!r}" for k, v in trajectory[f"tool_args_{step}"].items())
            name, observed = trajectory[f"tool_name_{step}"], trajectory[f"observation_{step}"]
            print(f"    step {step + 1}: {name}({args}) -> {observed}")
        print(f"    answer: {prediction.answer}")
        await bridge.cleanup()
    finally:
        await bridge.close()


async def main() -> None:
    print("toolbridge demo: MCP in both directions")
    with tempfile.TemporaryDirectory(prefix="toolbridge-mcp-demo-") as directory:
        async with launch_host([SHOP_TOOLS], {"mcp-port": 0}, cwd=REPO_ROOT) as shop:
            assert shop.mcp_url is not None
            shown = SHOP_TOOLS.relative_to(REPO_ROOT)
            print(f"\nshop host serving {shown} on {shop.target}, MCP on {shop.mcp_url}")
            await serve_over_http(shop.mcp_url)
            await serve_over_stdio()
            await mount(shop.mcp_url, Path(directory))


if __name__ == "__main__":
    asyncio.run(main())
