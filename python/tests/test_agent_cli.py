"""``python -m toolbridge.agent``: the entry point the TypeScript host launches, as a real subprocess."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import dspy
import pytest

from toolbridge import HostProcess, ToolBridgeClient
from toolbridge.agent.__main__ import choose_lm, main, parse_args
from toolbridge.agent.demo import SHOP_QUESTION, SHOP_TOOLS
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn

from .conftest import REPO_ROOT, agent_cli

#: Where testdata's LM factories live (``team_lm:make_lm``), as a team's module would be on PYTHONPATH.
TEAM_LMS = REPO_ROOT / "testdata" / "agents"


@pytest.fixture
async def shop_session(shop_host: HostProcess) -> AsyncIterator[str]:
    async with ToolBridgeClient(shop_host.target) as client:
        session = await client.initialize_session()
        yield session.session_id
        await client.cleanup()


async def test_runs_the_scripted_shop_agent_and_reports_each_step(
    shop_host: HostProcess, shop_session: str
) -> None:
    result = await agent_cli(
        "--address",
        shop_host.target,
        "--session",
        shop_session,
        "--tools",
        ",".join(SHOP_TOOLS),
        "--question",
        SHOP_QUESTION,
        "--script",
        "shop",
        "--events",
    )
    assert result.code == 0, result.stderr
    events = result.lines
    assert [e["kind"] for e in events] == [
        "run_started",
        *["thought", "tool_call", "observation"] * 3,
        "run_finished",
    ]
    # The host reads these lines (runPythonAgent): camelCase keys and a kind, like the agent records.
    assert {e["kind"]: sorted(e) for e in events} == {
        "run_started": ["agentId", "kind", "lm", "runId"],
        "thought": ["kind", "runId", "step", "text"],
        "tool_call": ["kind", "runId", "step", "toolArgs", "toolName"],
        "observation": ["errorType", "kind", "observation", "runId", "step", "toolName"],
        "run_finished": ["agentId", "error", "kind", "outputs", "runId", "status"],
    }
    assert {e["runId"] for e in events} == {events[-1]["runId"]}
    calls = [e for e in events if e["kind"] == "tool_call"]
    assert [(c["toolName"], c["toolArgs"]) for c in calls] == [
        ("search_docs", {"query": "express shipping cost", "limit": 2}),
        ("calculate", {"expression": "3 * 14.50 + 12"}),
        ("finish", {}),
    ]
    observations = [e["observation"] for e in events if e["kind"] == "observation"]
    assert observations[0][0]["id"] == "shipping"
    assert "costs 12 EUR" in observations[0][0]["snippet"]
    assert observations[1:] == [55.5, "Completed."]
    final = events[-1]
    assert final["status"] == "succeeded"
    assert final["outputs"] == {
        "answer": "55.50 EUR: 3 x 14.50 EUR = 43.50 EUR for the items plus 12 EUR for express shipping."
    }
    assert final["runId"].startswith(final["agentId"] + "_")
    # The readable progress goes to stderr.
    assert "[step 2] call calculate(expression='3 * 14.50 + 12')" in result.stderr
    assert "[step 2] -> 55.5" in result.stderr


async def test_a_json_script_drives_the_agent(
    shop_host: HostProcess, shop_session: str, tmp_path: Path
) -> None:
    script = tmp_path / "turns.json"
    script.write_text(
        json.dumps(
            [
                tool_turn("Read the doc.", "read_doc", doc_id="pricing"),
                tool_turn("Compute.", "calculate", expression="6 * 7"),
                finish_turn("Done."),
                answer_turn("The calculator said 42.", answer="42"),
            ]
        )
    )
    result = await agent_cli(
        "--address",
        shop_host.target,
        "--session",
        shop_session,
        "--signature",
        "question -> answer",
        "--tools",
        "read_doc,calculate",
        "--input",
        "question=What is six times seven?",
        "--script",
        str(script),
        "--events",
    )
    assert result.code == 0, result.stderr
    observations = [e for e in result.lines if e["kind"] == "observation"]
    # The failed call is an observation with its error type, and the run went on.
    assert observations[0]["errorType"] == "ToolExecutionError"
    assert observations[0]["observation"].startswith(
        "Tool 'read_doc' failed (ToolExecutionError): no document"
    )
    assert observations[1]["observation"] == 42
    assert result.lines[-1]["outputs"] == {"answer": "42"}
    assert "[step 1] -> error ToolExecutionError: Tool 'read_doc' failed" in result.stderr


def test_the_lm_comes_from_the_factory_then_the_flag_then_the_environment_then_the_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOOLBRIDGE_LM", "openai/gpt-4o-mini")
    monkeypatch.syspath_prepend(str(TEAM_LMS))
    lm = choose_lm(parse_args(["--address", "a", "--session", "s", "--lm-factory", "team_lm:make_lm"]))
    assert (type(lm), lm.model) == (ScriptedLM, "team/scripted-calculator")
    lm = choose_lm(parse_args(["--address", "a", "--session", "s", "--script", "shop"]))
    assert isinstance(lm, dspy.LM)
    assert lm.model == "openai/gpt-4o-mini"
    lm = choose_lm(parse_args(["--address", "a", "--session", "s", "--lm", "anthropic/claude-x"]))
    assert lm.model == "anthropic/claude-x"
    monkeypatch.delenv("TOOLBRIDGE_LM")
    assert isinstance(
        choose_lm(parse_args(["--address", "a", "--session", "s", "--script", "shop"])), ScriptedLM
    )


async def test_a_failed_run_exits_1_with_the_failure(
    shop_host: HostProcess, shop_session: str, tmp_path: Path
) -> None:
    script = tmp_path / "short.json"
    script.write_text(json.dumps([tool_turn("Compute.", "calculate", expression="1 + 1")]))
    result = await agent_cli(
        "--address",
        shop_host.target,
        "--session",
        shop_session,
        "--question",
        "1 + 1?",
        "--script",
        str(script),
    )
    assert result.code == 1, result.stderr
    final = result.lines[-1]
    assert final["status"] == "failed"
    assert "all 1 turns of the scripted LM are used" in final["error"]
    assert "error: the run failed:" in result.stderr
    assert "[step 1] -> 2" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--question", "hi"], 2, "no LM: set TOOLBRIDGE_LM (e.g. TOOLBRIDGE_LM=openai/gpt-4o-mini"),
        (["--script", "nope"], 2, "--script 'nope' is neither a known script (shop) nor a file"),
        (["--script", "shop", "--tools", "calculate,nope"], 2, "the session has no tool 'nope'"),
        (["--script", "shop", "--max-iters", "0"], 2, "max_iters must be an integer from 1 to 100"),
        (["--script", "shop", "--signature", "question answer"], 2, "invalid signature"),
        (["--script", "shop", "--input", "question"], 2, "--input expects NAME=TEXT"),
        (["--script", "shop", "--input-json", "n={"], 2, "--input-json n: not JSON"),
    ],
)
def test_bad_usage_is_reported_with_what_to_do(
    shop_host: HostProcess,
    shop_session: str,
    args: list[str],
    code: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # In-process (main() is what -m runs) to keep the test fast.
    assert main(["--address", shop_host.target, "--session", shop_session, *args]) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err


async def test_a_factory_lm_drives_the_agent(shop_host: HostProcess, shop_session: str) -> None:
    result = await agent_cli(
        "--address", shop_host.target, "--session", shop_session, "--tools", "calculate",
        "--question", "What is 6 x 7?", "--lm-factory", "team_lm:make_lm", "--events",
        env={"PYTHONPATH": str(TEAM_LMS)},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.lines[0]["lm"] == "team/scripted-calculator"
    assert result.lines[-1]["outputs"] == {"answer": "42"}


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("team_lm", "an LM factory is named module:function (e.g. my_team.llm:make_lm), got 'team_lm'"),
        ("no_such_module:make", "cannot import 'no_such_module' for the LM factory no_such_module:make"),
        ("team_lm:nope", "module 'team_lm' has no function 'nope'"),
        ("team_lm:broken", "the LM factory team_lm:broken failed: RuntimeError: TEAM_LM_KEY is not set"),
        ("team_lm:not_an_lm", "the LM factory team_lm:not_an_lm returned str, not a dspy.BaseLM"),
    ],
)
def test_a_factory_that_cannot_make_an_lm_says_why(
    factory: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(TEAM_LMS))
    assert (
        main(["--address", "127.0.0.1:9", "--session", "s", "--question", "?", "--lm-factory", factory]) == 2
    )
    assert message in capsys.readouterr().err


async def test_a_missing_session_or_host_is_unreachable(shop_host: HostProcess) -> None:
    missing = await agent_cli(
        "--address", shop_host.target, "--session", "no_such_session", "--script", "shop"
    )
    assert missing.code == 3
    assert "session no_such_session does not exist" in missing.stderr
    async with ToolBridgeClient(shop_host.target) as client:
        # The CLI removed the session its attach attempt created.
        assert (await client.initialize_session("no_such_session")).created
        await client.cleanup()

    down = await agent_cli("--address", "127.0.0.1:9", "--session", "s", "--script", "shop")
    assert down.code == 3
    assert "UNAVAILABLE" in down.stderr
