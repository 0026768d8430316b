"""Agents and runs kept in session variables: stateless workers in separate processes share them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from toolbridge import HostProcess, SessionContext, ToolBridgeClient
from toolbridge.agent import AgentDefinition, AgentNotFoundError, AgentRun, AgentRunStep, SessionAgents
from toolbridge.agent.demo import SHOP_QUESTION, SHOP_TOOLS, shop_script
from toolbridge.agent.store import TRIMMED_OBSERVATION_CHARS, SessionVariableAgentStore
from toolbridge.dspy import GRPCToolBridge

from .conftest import agent_cli

SHOP_ANSWER = "55.50 EUR: 3 x 14.50 EUR = 43.50 EUR for the items plus 12 EUR for express shipping."


@pytest.fixture
async def shop_bridge(shop_host: HostProcess) -> AsyncIterator[GRPCToolBridge]:
    bridge = GRPCToolBridge(shop_host.target)
    await bridge.initialize()
    yield bridge
    await bridge.cleanup()


@pytest.fixture
def shop_agents(shop_bridge: GRPCToolBridge) -> SessionAgents:
    return SessionAgents(shop_bridge)


async def test_an_agent_created_here_is_run_by_another_process(
    shop_bridge: GRPCToolBridge, shop_agents: SessionAgents, shop_host: HostProcess
) -> None:
    agent_id = await shop_agents.create_react_agent("question -> answer", list(SHOP_TOOLS), max_iters=4)
    async with ToolBridgeClient(shop_host.target) as client:
        await client.initialize_session(shop_bridge.session_id)
        stored = await SessionContext(client, cache=False).get_variable_info(f"agent_{agent_id}")
    assert stored.tags == {"schema": "toolbridge.v1.AgentDefinition", "kind": "agent", "agent_id": agent_id}
    assert isinstance(stored.value, bytes)
    assert AgentDefinition.from_bytes(stored.value).tool_names == SHOP_TOOLS
    assert stored.created_by == "python"

    result = await agent_cli(
        "--address", shop_host.target, "--session", shop_bridge.session_id, "--agent", agent_id,
        "--question", SHOP_QUESTION, "--script", "shop", "--events",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    events = result.lines
    finished = events[-1]
    assert finished["kind"] == "run_finished"
    assert finished["agentId"] == agent_id

    runs = await shop_agents.store.list_runs(agent_id)
    assert [run.run_id for run in runs] == [finished["runId"]]
    run = runs[0]
    assert run.status == "succeeded"
    assert run.outputs == {"answer": SHOP_ANSWER}
    assert [step.tool_name for step in run.steps] == ["search_docs", "calculate", "finish"]
    assert run.steps[1].observation == 55.5
    assert run.worker != ""
    assert run.finished_at is not None


async def test_an_agent_created_by_another_process_is_run_here(
    shop_bridge: GRPCToolBridge, shop_agents: SessionAgents, shop_host: HostProcess
) -> None:
    result = await agent_cli(
        "--address", shop_host.target, "--session", shop_bridge.session_id,
        "--signature", "question -> answer", "--tools", "search_docs,calculate",
        "--max-iters", "3", "--create-only",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    events = result.lines
    assert events[0]["kind"] == "agent_created"
    agent_id = str(events[0]["agentId"])

    definitions = await shop_agents.store.list_definitions()
    assert [(d.agent_id, d.tool_names, d.max_iters) for d in definitions] == [
        (agent_id, ("search_docs", "calculate"), 3)
    ]
    run = await shop_agents.run_agent_with(agent_id, {"question": SHOP_QUESTION}, lm=shop_script())
    assert run.status == "succeeded"
    assert run.outputs["answer"] == SHOP_ANSWER
    assert await shop_agents.store.load_run(run.run_id) == run


async def test_unknown_agents_and_runs_are_reported(
    shop_bridge: GRPCToolBridge, shop_agents: SessionAgents, shop_host: HostProcess
) -> None:
    with pytest.raises(AgentNotFoundError, match="react_missing"):
        await shop_agents.run_agent("react_missing", question="?")
    with pytest.raises(AgentNotFoundError):
        await shop_agents.store.load_run("react_missing_00000000")
    result = await agent_cli(
        "--address", shop_host.target, "--session", shop_bridge.session_id, "--agent", "react_missing",
        "--question", "?", "--script", "shop",
    )  # fmt: skip
    assert result.code == 2, result.stderr
    assert "react_missing" in result.stderr


async def test_a_run_too_large_for_a_variable_is_kept_with_trimmed_observations(
    shop_bridge: GRPCToolBridge,
) -> None:
    assert shop_bridge.client is not None
    store = SessionVariableAgentStore(shop_bridge.client)
    huge = "x" * (2 * 1024 * 1024)
    run = AgentRun.start("react_big", {"question": "?"}).with_steps(
        [
            AgentRunStep("Read it.", "read_doc", {"doc_id": "a"}, huge),
            AgentRunStep("Done.", "finish", {}, "ok"),
        ]
    )
    await store.record_run(run)
    stored = await store.load_run(run.run_id)
    assert stored.steps[1] == run.steps[1]
    observation = stored.steps[0].observation
    assert isinstance(observation, str)
    assert observation.startswith("x" * TRIMMED_OBSERVATION_CHARS)
    assert observation.endswith(f"({len(huge)} characters)")
    info = await SessionContext(shop_bridge.client, cache=False).get_variable_info(f"run_{run.run_id}")
    assert info.tags["trimmed"] == "true"
    # Definitions round-trip exactly.
    definition = AgentDefinition.create("question -> answer", ["calculate"], 2, instructions="Be brief.")
    await store.save_definition(definition)
    assert await store.load_definition(definition.agent_id) == definition
