"""Optimizing a DSPy agent that uses TypeScript tools, then saving it and loading it elsewhere.

A dspy.ReAct agent over the shop's `calculate` tool is compiled with BootstrapFewShot on a
two-question trainset, saved with its tools, and loaded again on a new session (as another
process would) where the tools are attached to that session's bridge. The LM is a scripted
DummyLM, so the example needs no network.

Runs the host itself (examples/tools/shop-tools.ts on an ephemeral loopback port) unless
TOOLBRIDGE_ADDRESS points at one that is already serving those tools.

    make demo-optimize             # or: .venv/bin/python examples/python/optimize_agent.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import dspy
from shop_client import host_address  # next to this file: TOOLBRIDGE_ADDRESS, or a host of its own

from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.dspy import GRPCToolBridge

TRAINSET = [
    dspy.Example(question="What do 3 items at 14.50 EUR cost?", answer="43.5").with_inputs("question"),
    dspy.Example(question="What do 2 items at 12.25 EUR cost?", answer="24.5").with_inputs("question"),
]


def calculation(expression: str) -> list[Any]:
    """The LM's turns for one question: calculate, finish, answer with what the tool returned."""
    return [
        tool_turn(f"The total is {expression}; the calculator says.", "calculate", expression=expression),
        finish_turn("I have the total."),
        lambda seen: answer_turn("The calculator gave the total.", answer=str(seen[0])),
    ]


def exact_answer(example: dspy.Example, prediction: dspy.Prediction, trace: object = None) -> bool:
    return bool(prediction.answer == example.answer)


def optimize_and_save(address: str, path: Path) -> None:
    bridge = GRPCToolBridge(address)
    bridge.initialize_sync()
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["calculate"]), max_iters=3)

    teacher = ScriptedLM(calculation("3 * 14.50") + calculation("2 * 12.25"))
    optimizer = dspy.BootstrapFewShot(metric=exact_answer, max_bootstrapped_demos=2, max_labeled_demos=0)
    with dspy.context(lm=teacher):
        compiled = optimizer.compile(agent, trainset=TRAINSET)
    demos = {name: len(predictor.demos) for name, predictor in compiled.named_predictors()}
    print(f"compiled with BootstrapFewShot: demos {demos}")

    # The whole program, tools included (each saved as its spec, without the connection).
    compiled.save(path, save_program=True)
    print(f"saved to {path.name}/")
    bridge.cleanup_sync()


def load_and_run(address: str, path: Path) -> None:
    # Later, elsewhere: a new session, and the loaded program's tools attached to it.
    bridge = GRPCToolBridge(address)
    bridge.initialize_sync()
    program = bridge.attach(dspy.load(str(path), allow_pickle=True))
    print(f"loaded into session {bridge.session_id[:16]}…: demos {len(program.react.demos)}")
    with dspy.context(lm=ScriptedLM(calculation("4 * 2.75"))):
        prediction = program(question="What do 4 items at 2.75 EUR cost?")
    print(f"What do 4 items at 2.75 EUR cost? {prediction.answer}")
    bridge.cleanup_sync()


async def main() -> None:
    async with host_address() as address:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "shop_agent"
            # DSPy's optimizers and the programs they run are sync code: a thread keeps the loop free.
            await asyncio.to_thread(optimize_and_save, address, path)
            await asyncio.to_thread(load_and_run, address, path)


if __name__ == "__main__":
    asyncio.run(main())
