"""DSPy programs over bridge tools, used as a DSPy user would: copied and optimized, saved and
loaded, run from any event loop or thread, and ended by a lost session or a cancellation.

Real dspy (BootstrapFewShot, save/load, ReAct) with scripted DummyLMs against the real host.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dspy
import pytest

from toolbridge import HostProcess, ToolBridgeClient
from toolbridge.agent import AgentRun, AgentRunError, SessionAgents
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.dspy import BridgeLost, BridgeTool, GRPCToolBridge

from .conftest import REPO_ROOT, wait_for

OPTIMIZE_EXAMPLE = REPO_ROOT / "examples" / "python" / "optimize_agent.py"

QUESTIONS = [("What is 2 + 3?", 2, 3, "5"), ("What is 4 + 4?", 4, 4, "8")]


def adding_turns(a: float, b: float) -> list[Any]:
    """One ReAct run: add(a, b), finish, answer with the sum the tool returned."""
    return [
        tool_turn(f"Add {a} and {b}.", "add", a=a, b=b),
        finish_turn("I have the sum."),
        lambda seen: answer_turn("The tool added them.", answer=str(seen[0])),
    ]


def trainset() -> list[dspy.Example]:
    return [dspy.Example(question=q, answer=answer).with_inputs("question") for q, _, _, answer in QUESTIONS]


def exact_answer(example: dspy.Example, prediction: dspy.Prediction, trace: object = None) -> bool:
    return bool(prediction.answer == example.answer)


@pytest.fixture
def problems(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """What would go wrong in front of a user: logged warnings, "Exception ignored" errors."""
    unraisable: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda info: unraisable.append(
        f"Exception ignored in {info.object!r}: {info.exc_value!r}"
    )
    caplog.set_level(logging.WARNING)

    def seen() -> list[str]:
        gc.collect()
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records] + unraisable

    yield seen
    sys.unraisablehook = previous


# -- copies and optimizers -----------------------------------------------------------------------------


async def test_copies_share_the_bridge_silently(
    bridge: GRPCToolBridge, problems: Callable[[], list[str]]
) -> None:
    tool = bridge.get_dspy_tool("add")
    copied = copy.deepcopy(tool)
    assert isinstance(copied, BridgeTool)
    assert copied is not tool
    assert copied.args == tool.args
    assert copied.args is not tool.args
    assert copied.spec is tool.spec
    copied.desc = "Rewritten by an optimizer."
    assert tool.desc == "Adds two numbers."
    assert await copied.acall(a=1, b=2) == 3
    assert copy.deepcopy(bridge) is bridge

    agent = dspy.ReAct("question -> answer", tools=[tool])
    for twin in (agent.deepcopy(), agent.reset_copy(), copy.deepcopy(agent)):
        assert isinstance(twin.tools["add"], BridgeTool)
        assert twin.tools["add"] is not tool
        assert await twin.tools["add"].acall(a=2, b=2) == 4
    assert problems() == []


async def test_bootstrap_few_shot_optimizes_an_agent_with_bridge_tools(
    bridge: GRPCToolBridge, problems: Callable[[], list[str]]
) -> None:
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["add"]), max_iters=3)
    teacher_lm = ScriptedLM([turn for _, a, b, _ in QUESTIONS for turn in adding_turns(a, b)])
    optimizer = dspy.BootstrapFewShot(metric=exact_answer, max_bootstrapped_demos=2, max_labeled_demos=0)

    def compile_program() -> Any:
        # DSPy's optimizers are sync: a thread keeps this test's loop free, as a user's script would.
        with dspy.context(lm=teacher_lm):
            return optimizer.compile(agent, trainset=trainset())

    compiled = await asyncio.to_thread(compile_program)
    assert [len(predictor.demos) for predictor in compiled.predictors()] == [2, 2]
    assert compiled.tools["add"] is not agent.tools["add"]
    with dspy.context(lm=ScriptedLM(adding_turns(20, 22))):
        assert (await compiled.acall(question="What is 20 + 22?")).answer == "42"
    assert problems() == []


async def test_a_saved_program_loads_with_its_tools_attached_to_a_live_bridge(
    bridge: GRPCToolBridge, host: HostProcess, tmp_path: Path, problems: Callable[[], list[str]]
) -> None:
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["add", "fail"]), max_iters=3)
    optimizer = dspy.BootstrapFewShot(metric=exact_answer, max_bootstrapped_demos=1, max_labeled_demos=0)
    with dspy.context(lm=ScriptedLM(adding_turns(2, 3))):
        compiled = await asyncio.to_thread(optimizer.compile, agent, trainset=trainset()[:1])
    compiled.tools["add"].desc = "Adds two numbers (optimized)."

    # The whole program (cloudpickle): the tools are saved without the bridge...
    compiled.save(tmp_path / "program", save_program=True)
    loaded = dspy.load(str(tmp_path / "program"), allow_pickle=True)
    assert isinstance(loaded.tools["add"], BridgeTool)
    with pytest.raises(
        BridgeLost, match=r"loaded from a saved program and has no bridge: call bridge.attach"
    ):
        await loaded.tools["add"].acall(a=1, b=1)

    # ...and are attached to a live one: another bridge, on another session, as a new process would.
    async with GRPCToolBridge(host.target) as later:
        await later.initialize()
        assert later.attach(loaded) is loaded
        assert loaded.tools["add"].desc == "Adds two numbers (optimized)."
        assert loaded.react.demos == compiled.react.demos
        with dspy.context(lm=ScriptedLM(adding_turns(6, 7))):
            assert (await loaded.acall(question="What is 6 + 7?")).answer == "13"
            assert loaded.tools["fail"](message="x") == "Tool 'fail' failed (ToolExecutionError): x"

        # The state alone (JSON): loaded into an agent built with the live bridge's tools.
        compiled.save(tmp_path / "state.json")
        fresh = dspy.ReAct("question -> answer", tools=later.get_dspy_tools(["add", "fail"]), max_iters=3)
        fresh.load(tmp_path / "state.json")
        assert [len(p.demos) for p in fresh.predictors()] == [len(p.demos) for p in compiled.predictors()]
        with dspy.context(lm=ScriptedLM(adding_turns(1, 1))):
            assert (await fresh.acall(question="What is 1 + 1?")).answer == "2"
        await later.cleanup()
    assert [p for p in problems() if "untrusted .pkl" not in p] == []  # DSPy's own notice on save_program


async def test_the_optimizing_example_runs_without_a_warning(shop_host: HostProcess) -> None:
    # The program of docs/dspy.md, in a process of its own: what its user sees on stderr is the test.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(OPTIMIZE_EXAMPLE),
        env={**os.environ, "TOOLBRIDGE_ADDRESS": shop_host.target},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert "compiled with BootstrapFewShot: demos {'react': 2, 'extract.predict': 2}" in lines
    assert any(line.startswith("loaded into session session_") and line.endswith("demos 2") for line in lines)
    assert lines[-1] == "What do 4 items at 2.75 EUR cost? 11"
    complaints = [
        line
        for line in stderr.decode().splitlines()
        if ("WARNING" in line and "untrusted .pkl" not in line)  # DSPy's own notice on save_program
        or "Exception ignored" in line
        or "Failed to deep copy" in line
        or "Traceback" in line
    ]
    assert complaints == []


# -- any loop, any thread, sync code ---------------------------------------------------------------------


async def test_the_store_and_agents_work_from_any_loop_thread_and_sync_code(bridge: GRPCToolBridge) -> None:
    agents = SessionAgents(bridge)
    agent_id = await agents.create_react_agent("question -> answer", ["add"], max_iters=3)

    def run_on_another_loop() -> tuple[AgentRun, list[AgentRun]]:
        async def other() -> tuple[AgentRun, list[AgentRun]]:
            with dspy.context(lm=ScriptedLM(adding_turns(1, 2))):
                run = await agents.run_agent(agent_id, question="1 + 2?")
            return run, await agents.store.list_runs(agent_id)

        return asyncio.run(other())

    def sync_code() -> tuple[AgentRun, list[AgentRun], str]:
        with dspy.context(lm=ScriptedLM(adding_turns(3, 4))):  # the caller's context reaches the run
            run = agents.run_agent_sync(agent_id, question="3 + 4?")
        created = agents.create_react_agent_sync("question -> answer", ["add"], agent_id="made_in_a_thread")
        return run, agents.store.list_runs_sync(agent_id), created

    on_loop, runs_seen_there = await asyncio.to_thread(run_on_another_loop)
    assert (on_loop.status, on_loop.outputs) == ("succeeded", {"answer": "3"})
    assert [run.run_id for run in runs_seen_there] == [on_loop.run_id]

    in_thread, runs_seen_in_thread, created = await asyncio.to_thread(sync_code)
    assert (in_thread.status, in_thread.outputs) == ("succeeded", {"answer": "7"})
    assert [run.run_id for run in runs_seen_in_thread] == [on_loop.run_id, in_thread.run_id]
    assert (await agents.store.load_definition(created)).agent_id == "made_in_a_thread"

    # Sync twins inside a running loop (this test's): they block it, and still work.
    assert agents.store.load_run_sync(in_thread.run_id) == in_thread
    assert [d.agent_id for d in agents.store.list_definitions_sync()] == sorted([agent_id, created])
    assert len(agents.load_react_agent_sync(agent_id).tools) == 2  # add + finish


async def test_a_sync_bridge_serves_asyncio_run_and_threads(host: HostProcess) -> None:
    def program() -> tuple[list[str], list[str], AgentRun, str]:
        bridge = GRPCToolBridge(host.target)
        bridge.initialize_sync()
        agents = SessionAgents(bridge)
        agent_id = agents.create_react_agent_sync("question -> answer", ["add"], max_iters=3)
        with dspy.context(lm=ScriptedLM(adding_turns(5, 5))):
            run = agents.run_agent_sync(agent_id, question="5 + 5?")
        # Store reads from a fresh loop, and from another thread's loop.
        from_new_loop = [r.run_id for r in asyncio.run(agents.store.list_runs(agent_id))]
        box: list[list[str]] = []
        worker = threading.Thread(
            target=lambda: box.append([r.run_id for r in asyncio.run(agents.store.list_runs(agent_id))])
        )
        worker.start()
        worker.join()
        asyncio.run(bridge.refresh_tools())
        session_id = bridge.session_id
        asyncio.run(bridge.cleanup())
        return from_new_loop, box[0], run, session_id

    from_new_loop, from_thread, run, session_id = await asyncio.to_thread(program)
    assert run.status == "succeeded"
    assert from_new_loop == from_thread == [run.run_id]
    async with ToolBridgeClient(host.target) as client:
        assert (await client.initialize_session(session_id)).created  # cleanup ended it
        await client.cleanup()


# -- runs that cannot go on ---------------------------------------------------------------------------


async def test_a_session_cleaned_up_mid_run_ends_the_run_as_failed(host: HostProcess) -> None:
    bridge = GRPCToolBridge(host.target)
    await bridge.initialize()
    agents = SessionAgents(bridge)
    agent_id = await agents.create_react_agent("question -> answer", ["add"], max_iters=5)

    def clean_up_elsewhere(seen: list[Any]) -> dict[str, Any]:
        # Another process ends the session while the agent thinks about its next step.
        async def cleanup() -> None:
            async with ToolBridgeClient(host.target) as other:
                await other.initialize_session(bridge.session_id)
                await other.cleanup()

        worker = threading.Thread(target=lambda: asyncio.run(cleanup()))
        worker.start()
        worker.join()
        return tool_turn("Add again.", "add", a=seen[0], b=1)

    lm = ScriptedLM([tool_turn("Add.", "add", a=1, b=2), clean_up_elsewhere, finish_turn("Unreachable.")])
    with pytest.raises(AgentRunError) as info:
        await agents.run_agent_with(agent_id, {"question": "1 + 2 + 1?"}, lm=lm)
    failed = info.value.run
    assert info.value.type == "SessionNotFound"
    assert failed.status == "failed"
    assert failed.error.startswith(
        "SessionNotFound: the run stopped because tool 'add' cannot reach its session (2 steps recorded): "
    ), failed.error
    assert "Traceback" not in failed.error
    assert [(s.tool_name, s.error_type) for s in failed.steps] == [("add", None), ("add", "SessionNotFound")]
    assert lm.used == 2, "no LM call after the session was gone"
    await bridge.close()


async def test_a_cancelled_run_is_recorded_as_failed_with_why(bridge: GRPCToolBridge) -> None:
    agents = SessionAgents(bridge)
    agent_id = await agents.create_react_agent("question -> answer", ["add", "slow"], max_iters=5)
    lm = ScriptedLM(
        [tool_turn("Add.", "add", a=1, b=2), tool_turn("Wait.", "slow", ms=60_000, tag="agent-abort")]
    )
    task = asyncio.create_task(agents.run_agent_with(agent_id, {"question": "Wait?"}, lm=lm))
    events = bridge.get_dspy_tool("events")

    async def started() -> bool:
        return bool(await events.acall(tag="agent-abort"))

    await wait_for(started, timeout_s=30)
    task.cancel("stopped by the test")
    with pytest.raises(asyncio.CancelledError):
        await task

    [run] = await agents.store.list_runs(agent_id)
    assert run.status == "failed"
    assert run.error == (
        "Cancelled: the run was stopped before it finished: stopped by the test (2 steps recorded)"
    )
    assert [(s.tool_name, s.error_type) for s in run.steps] == [("add", None), ("slow", "Cancelled")]

    # The cancelled call reached the host: the tool's signal fired.
    async def aborted() -> bool:
        return [e["event"] for e in await events.acall(tag="agent-abort")] == ["started", "aborted"]

    await wait_for(aborted, timeout_s=30)
