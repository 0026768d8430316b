"""Agents and runs kept in session variables: stateless workers in separate processes share them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import pytest

from toolbridge import HostProcess, SessionContext, ToolBridgeClient
from toolbridge.agent import AgentDefinition, AgentNotFoundError, AgentRun, TrajectoryStep
from toolbridge.agent.demo import SHOP_QUESTION, SHOP_TOOLS, shop_script
from toolbridge.agent.store import TRIMMED_OBSERVATION_CHARS, SessionVariableAgentStore
from toolbridge.dspy_bridge import GRPCToolBridge

from .conftest import REPO_ROOT, spawn_host

SHOP_ANSWER = "55.50 EUR: 3 x 14.50 EUR = 43.50 EUR for the items plus 12 EUR for express shipping."


@pytest.fixture(scope="module")
async def shop_host() -> AsyncIterator[HostProcess]:
    host = await spawn_host(tools=[REPO_ROOT / "examples" / "tools" / "shop-tools.ts"])
    yield host
    assert await host.stop() == 0, host.output()


@pytest.fixture
async def bridge(shop_host: HostProcess) -> AsyncIterator[GRPCToolBridge]:
    bridge = GRPCToolBridge(shop_host.target)
    await bridge.initialize()
    yield bridge
    await bridge.cleanup()


async def worker(*args: str) -> tuple[int, list[dict[str, object]], str]:
    """``python -m toolbridge.agent`` in a process of its own: exit code, JSON events, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "toolbridge.agent",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != "TOOLBRIDGE_LM"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, [json.loads(line) for line in stdout.decode().splitlines()], stderr.decode()


async def test_an_agent_created_here_is_run_by_another_process(
    bridge: GRPCToolBridge, shop_host: HostProcess
) -> None:
    agent_id = await bridge.create_react_agent("question -> answer", list(SHOP_TOOLS), max_iters=4)
    async with ToolBridgeClient(shop_host.target) as client:
        await client.initialize_session(bridge.session_id)
        stored = await SessionContext(client, cache=False).get_variable_info(f"agent_{agent_id}")
    assert stored.tags == {"kind": "agent", "agent_id": agent_id}
    assert stored.created_by == "python"

    code, events, stderr = await worker(
        "--address", shop_host.target, "--session", bridge.session_id, "--agent", agent_id,
        "--question", SHOP_QUESTION, "--script", "shop", "--events",
    )  # fmt: skip
    assert code == 0, stderr
    finished = events[-1]
    assert finished["event"] == "run_finished"
    assert finished["agent_id"] == agent_id

    runs = await bridge.store.list_runs(agent_id)
    assert [run.run_id for run in runs] == [finished["run_id"]]
    run = runs[0]
    assert run.status == "succeeded"
    assert run.outputs == {"answer": SHOP_ANSWER}
    assert [step.tool_name for step in run.steps] == ["search_docs", "calculate", "finish"]
    assert run.steps[1].observation == 55.5
    assert run.worker != ""
    assert run.finished_at is not None


async def test_an_agent_created_by_another_process_is_run_here(
    bridge: GRPCToolBridge, shop_host: HostProcess
) -> None:
    code, events, stderr = await worker(
        "--address", shop_host.target, "--session", bridge.session_id, "--signature", "question -> answer",
        "--tools", "search_docs,calculate", "--max-iters", "3", "--create-only",
    )  # fmt: skip
    assert code == 0, stderr
    assert events[0]["event"] == "agent_created"
    agent_id = str(events[0]["agent_id"])

    definitions = await bridge.store.list_definitions()
    assert [(d.agent_id, d.tool_names, d.max_iters) for d in definitions] == [
        (agent_id, ("search_docs", "calculate"), 3)
    ]
    run = await bridge.run_agent_with(agent_id, {"question": SHOP_QUESTION}, lm=shop_script())
    assert run.status == "succeeded"
    assert run.outputs["answer"] == SHOP_ANSWER
    assert await bridge.store.load_run(run.run_id) == run


async def test_unknown_agents_and_runs_are_reported(bridge: GRPCToolBridge, shop_host: HostProcess) -> None:
    with pytest.raises(AgentNotFoundError, match="react_missing"):
        await bridge.run_agent("react_missing", question="?")
    with pytest.raises(AgentNotFoundError):
        await bridge.store.load_run("react_missing_00000000")
    code, _, stderr = await worker(
        "--address", shop_host.target, "--session", bridge.session_id, "--agent", "react_missing",
        "--question", "?", "--script", "shop",
    )  # fmt: skip
    assert code == 2, stderr
    assert "react_missing" in stderr


async def test_a_run_too_large_for_a_variable_is_kept_with_trimmed_observations(
    bridge: GRPCToolBridge,
) -> None:
    assert bridge.client is not None
    store = SessionVariableAgentStore(bridge.client)
    huge = "x" * (2 * 1024 * 1024)
    run = AgentRun.start("react_big", {"question": "?"}).with_steps(
        [
            TrajectoryStep("Read it.", "read_doc", {"doc_id": "a"}, huge),
            TrajectoryStep("Done.", "finish", {}, "ok"),
        ]
    )
    await store.record_run(run)
    stored = await store.load_run(run.run_id)
    assert stored.steps[1] == run.steps[1]
    observation = stored.steps[0].observation
    assert isinstance(observation, str)
    assert observation.startswith("x" * TRIMMED_OBSERVATION_CHARS)
    assert observation.endswith(f"({len(huge)} characters)")
    info = await SessionContext(bridge.client, cache=False).get_variable_info(f"run_{run.run_id}")
    assert info.tags["trimmed"] == "true"
    # Definitions round-trip exactly.
    definition = AgentDefinition.create("question -> answer", ["calculate"], 2, instructions="Be brief.")
    await store.save_definition(definition)
    assert await store.load_definition(definition.agent_id) == definition
