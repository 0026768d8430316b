"""What the inspector's browser tests do from Python, against the test host.

python_client.py write --address A --token T --session S --name N --value V
    writes the string variable N = V in session S, prints "written <version>" once the
    host acknowledged the write, and exits;
python_client.py declare ... --name N --value V (an int, declared integer in [0, 10]);
python_client.py agent --address A --token T --session S --release PATH
    runs a ReAct agent (dspy with a scripted DummyLM) in session S: it adds 2 and 3, then
    calls wait_for_file(PATH), which holds the run until the test creates PATH, then
    finishes; prints "run <status>".
"""

from __future__ import annotations

import argparse
import asyncio

from toolbridge import SessionContext, ToolBridgeClient, VariableConstraints
from toolbridge.agent import AgentDefinition, SessionAgents
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.dspy import GRPCToolBridge


async def write(args: argparse.Namespace) -> None:
    async with ToolBridgeClient(args.address, token=args.token) as client:
        await client.initialize_session(args.session)
        async with SessionContext(client, cache=False) as session:
            written = await session.set_variable("greeting", "hello from python")
            print(f"written greeting {written.version}", flush=True)
            limits = VariableConstraints(min=0, max=10)
            declared = await session.declare_variable("limit", "integer", 5, limits)
            print(f"declared limit {declared.version}", flush=True)


async def agent(args: argparse.Namespace) -> None:
    bridge = GRPCToolBridge(args.address, token=args.token)
    await bridge.initialize(args.session)
    try:
        definition = AgentDefinition.create(
            "question -> answer", ["add", "wait_for_file"], 5, agent_id="inspector_agent"
        )
        lm = ScriptedLM(
            [
                tool_turn("Add 2 and 3 first.", "add", a=2, b=3),
                tool_turn("Wait for the go-ahead.", "wait_for_file", path=args.release, tag="agent"),
                finish_turn("I have the sum."),
                lambda seen: answer_turn("The add tool said so.", answer=str(seen[0])),
            ]
        )
        run = await SessionAgents(bridge).run_definition(definition, {"question": "What is 2 + 3?"}, lm=lm)
        print(f"run {run.status}", flush=True)
    finally:
        await bridge.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["write", "agent"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--release", default="")
    args = parser.parse_args()
    asyncio.run(agent(args) if args.command == "agent" else write(args))


if __name__ == "__main__":
    main()
