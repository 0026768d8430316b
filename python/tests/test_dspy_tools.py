"""Host tools as dspy.Tool objects: real dspy.ReAct, driven by a scripted DummyLM, against the real host."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from typing import Any, Literal

import dspy
import pytest

from toolbridge import HostProcess, ToolBridgeClient, ToolCommunicationError
from toolbridge.agent.scripted import (
    ScriptedLM,
    ScriptExhaustedError,
    answer_turn,
    finish_turn,
    observations_in,
    tool_turn,
)
from toolbridge.dspy import (
    INVALID_ARGUMENTS,
    BridgeLost,
    BridgeTool,
    GRPCToolBridge,
    ToolErrorObservation,
    json_schema_type,
)
from toolbridge.dspy.tool import ArgumentParser

from .conftest import spawn_host


def add_twice_script() -> ScriptedLM:
    """add(2, 3), then add(<that result>, 10), then finish and answer with the last result."""
    return ScriptedLM(
        [
            tool_turn("First add 2 and 3.", "add", a=2, b=3),
            lambda seen: tool_turn("Now add 10 to that.", "add", a=seen[-1], b=10),
            finish_turn("I have the total."),
            lambda seen: answer_turn("The second call returned the total.", answer=str(seen[1])),
        ]
    )


def check_add_twice(prediction: Any) -> None:
    trajectory = prediction.trajectory
    assert trajectory["tool_name_0"] == "add"
    assert trajectory["observation_0"] == 5
    assert trajectory["tool_name_1"] == "add"
    # The scripted LM read 5 from its prompt, as a real LM would, and passed it on.
    assert trajectory["tool_args_1"] == {"a": 5, "b": 10}
    assert trajectory["observation_1"] == 15
    assert trajectory["tool_name_2"] == "finish"
    assert prediction.answer == "15"


async def test_tools_carry_the_hosts_names_descriptions_and_argument_schemas(bridge: GRPCToolBridge) -> None:
    tools = {tool.name: tool for tool in bridge.get_dspy_tools()}
    assert set(tools) == set(bridge.specs)
    assert all(isinstance(tool, dspy.Tool) and isinstance(tool, BridgeTool) for tool in tools.values())

    add = tools["add"]
    assert add.desc == "Adds two numbers."
    assert add.args == {
        "a": {"type": "number", "description": "First addend"},
        "b": {"type": "number", "description": "Second addend"},
    }
    assert add.arg_types == {"a": float, "b": float}
    assert add.arg_desc == {"a": "First addend", "b": "Second addend"}
    assert not add.has_kwargs
    assert list(inspect.signature(add.func).parameters) == ["a", "b"]

    described = tools["describe_args"]
    assert list(described.args) == ["name", "count", "ratio", "mode", "tags"]
    assert described.args["count"] == {
        "default": 1,
        "description": "How many",
        "type": "integer",
        "minimum": 1,
        "maximum": 2**53 - 1,
    }
    assert described.arg_types == {
        "name": str,
        "count": int,
        "ratio": float,
        "mode": Literal["fast", "slow"],
        "tags": list[str],
    }
    assert described.arg_desc == {"name": "Who", "count": "How many"}
    # What an LM with native function calling is sent: `ratio` is optional without a default,
    # so it is not required (DSPy's own rule, "no default", would make the LM invent one).
    function = described.format_as_litellm_function_call()["function"]
    assert function["name"] == "describe_args"
    assert function["parameters"]["required"] == ["name"]
    assert described.required == ("name",)

    # ReAct's prompt lists each tool with its description and argument schemas.
    agent = dspy.ReAct("question -> answer", tools=[add, described])
    instructions = agent.react.signature.instructions
    assert "(1) add, whose description is <desc>Adds two numbers.</desc>." in instructions
    assert "'description': 'Second addend'}}. Required arguments: a, b.\n(2) describe_args" in instructions
    assert "Required arguments: name.\n(3) finish" in instructions
    assert "'a': {'type': 'number', 'description': 'First addend'}" in instructions
    assert "'mode': {'default': 'fast', 'type': 'string', 'enum': ['fast', 'slow']}" in instructions

    assert bridge.get_dspy_tools(["fail", "add"]) == [tools["fail"], tools["add"]]
    listed = "the session has no tool 'nope'; its tools: add, bad_chunk, bad_output, bad_result"
    with pytest.raises(Exception, match=listed):
        bridge.get_dspy_tools(["nope"])


def test_json_schema_types() -> None:
    assert json_schema_type({"type": "string"}) is str
    assert json_schema_type({}) is Any
    assert json_schema_type({"type": ["integer", "null"]}) == int | None
    assert json_schema_type({"anyOf": [{"type": "string"}, {"type": "null"}]}) == str | None
    assert json_schema_type({"anyOf": [{"type": "string"}, {}]}) is Any
    assert json_schema_type({"const": "x"}) == Literal["x"]
    assert (
        json_schema_type({"type": "array", "items": {"type": "array", "items": {"type": "number"}}})
        == list[list[float]]
    )
    assert json_schema_type({"type": "array"}) == list[Any]
    assert json_schema_type({"type": "object", "additionalProperties": {"type": "integer"}}) == dict[str, int]
    assert json_schema_type({"type": "object", "properties": {"a": {}}}) == dict[str, Any]
    assert json_schema_type({"enum": [{"no": "dicts"}]}) is Any


async def test_a_sync_react_agent_calls_two_tools_in_sequence(bridge: GRPCToolBridge) -> None:
    assert dspy.settings.allow_tool_async_sync_conversion is False
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["add", "fail"]))

    def run_sync() -> Any:
        with dspy.context(lm=add_twice_script()):
            return agent(question="What is 2 + 3 + 10?")

    # From a plain thread, as a sync program runs it...
    check_add_twice(await asyncio.to_thread(run_sync))
    # ...and from a thread that runs an event loop (the call blocks it, as any sync call would).
    check_add_twice(run_sync())


async def test_an_async_react_agent_calls_two_tools_in_sequence(bridge: GRPCToolBridge) -> None:
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["add", "fail"]))
    with dspy.context(lm=add_twice_script()):
        check_add_twice(await agent.acall(question="What is 2 + 3 + 10?"))

    # On a loop the bridge does not own (its calls go through the bridge's background client).
    def other_loop() -> Any:
        with dspy.context(lm=add_twice_script()):
            return asyncio.run(agent.acall(question="What is 2 + 3 + 10?"))

    check_add_twice(await asyncio.to_thread(other_loop))


async def test_a_failing_tool_becomes_an_observation_and_the_agent_continues(bridge: GRPCToolBridge) -> None:
    agent = dspy.ReAct(
        "question -> answer", tools=bridge.get_dspy_tools(["fail", "add", "slow_short_timeout"])
    )
    lm = ScriptedLM(
        [
            tool_turn("Try the flaky tool.", "fail", message="disk on fire"),
            tool_turn("Pass a bad argument.", "add", a="two", b=3),
            tool_turn("Wait too long.", "slow_short_timeout", ms=5000, tag="dspy-timeout"),
            tool_turn("Add properly.", "add", a=2, b=3),
            finish_turn("Done."),
            lambda seen: answer_turn("Only the last call worked.", answer=str(seen[3])),
        ]
    )
    with dspy.context(lm=lm):
        prediction = await agent.acall(question="What is 2 + 3?")
    trajectory = prediction.trajectory

    failed = trajectory["observation_0"]
    assert isinstance(failed, ToolErrorObservation)
    assert failed == "Tool 'fail' failed (ToolExecutionError): disk on fire"
    assert (failed.type, failed.details) == ("ToolExecutionError", {"exception": "RangeError"})

    invalid = trajectory["observation_1"]
    assert isinstance(invalid, ToolErrorObservation)
    assert invalid.type == INVALID_ARGUMENTS
    assert "'two' is not of type 'number'" in invalid

    timed_out = trajectory["observation_2"]
    assert isinstance(timed_out, ToolErrorObservation)
    assert timed_out.type == "Timeout"

    assert trajectory["observation_3"] == 5
    assert prediction.answer == "5"
    # The LM saw the error text in its prompt.
    assert observations_in(lm.history[-1]["messages"])[0] == str(failed)

    # The same through the sync entry point.
    assert agent.tools["fail"](message="again") == "Tool 'fail' failed (ToolExecutionError): again"


async def test_a_missing_required_argument_is_refused_before_the_call_goes_out(
    bridge: GRPCToolBridge, client: ToolBridgeClient
) -> None:
    """The LM forgot ``name``: the agent reads InvalidArguments, and the host never sees the call."""

    async def calls_of_describe_args() -> int:
        tool = (await client.get_metrics()).tools.get("describe_args")
        return 0 if tool is None else tool.calls

    before = await calls_of_describe_args()
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["describe_args"]))
    lm = ScriptedLM(
        [
            tool_turn("Describe three of them.", "describe_args", count=3),
            tool_turn("Name them this time.", "describe_args", name="widgets", count=3),
            finish_turn("Done."),
            lambda seen: answer_turn("The second call worked.", answer=seen[1]["name"]),
        ]
    )
    with dspy.context(lm=lm):
        prediction = await agent.acall(question="What is described?")
    refused = prediction.trajectory["observation_0"]
    assert isinstance(refused, ToolErrorObservation)
    assert refused.type == INVALID_ARGUMENTS
    assert refused == (
        "Tool 'describe_args' failed (InvalidArguments): "
        "invalid arguments: Arg name required by the tool but missing."
    )
    assert prediction.trajectory["observation_1"]["count"] == 3
    assert prediction.answer == "widgets"
    # One call reached the host: the second. The first never went out.
    assert await calls_of_describe_args() == before + 1
    # The sync entry point checks the same.
    assert agent.tools["describe_args"](count=2).type == INVALID_ARGUMENTS
    assert await calls_of_describe_args() == before + 1


async def test_a_streaming_tool_returns_its_collected_chunks(bridge: GRPCToolBridge) -> None:
    count = bridge.get_dspy_tool("count")
    assert await count.acall(n=3) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert await asyncio.to_thread(count, n=2) == [{"i": 0}, {"i": 1}]
    broken = await bridge.get_dspy_tool("fail_stream").acall(after=2, message="stream snapped")
    assert isinstance(broken, ToolErrorObservation)
    assert broken == "Tool 'fail_stream' failed (ToolExecutionError): stream snapped"


async def test_a_sync_program_uses_the_bridge_without_an_event_loop(host: HostProcess) -> None:
    def program() -> tuple[Any, Any, str]:
        bridge = GRPCToolBridge(host.target)
        bridge.initialize_sync()
        agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["add"]))
        with dspy.context(lm=add_twice_script()):
            sync_prediction = agent(question="What is 2 + 3 + 10?")
        with dspy.context(lm=add_twice_script()):
            async_prediction = asyncio.run(agent.acall(question="What is 2 + 3 + 10?"))
        session_id = bridge.session_id
        bridge.cleanup_sync()
        return sync_prediction, async_prediction, session_id

    sync_prediction, async_prediction, session_id = await asyncio.to_thread(program)
    check_add_twice(sync_prediction)
    check_add_twice(async_prediction)
    async with ToolBridgeClient(host.target) as client:
        assert (await client.initialize_session(session_id)).created  # cleanup_sync ended it
        await client.cleanup()


async def test_transport_failures_end_the_run_instead_of_becoming_observations() -> None:
    host = await spawn_host()
    bridge = GRPCToolBridge(host.target)
    await bridge.initialize()
    add = bridge.get_dspy_tool("add")
    assert await add.acall(a=1, b=2) == 3
    assert await host.stop() == 0
    with pytest.raises(BridgeLost) as lost:
        await add.acall(a=1, b=2)
    assert isinstance(lost.value.error, ToolCommunicationError)
    assert lost.value.type == "CommunicationError"
    with pytest.raises(BridgeLost):
        await asyncio.to_thread(add, a=1, b=2)
    # Not an "Execution error" observation the agent would read and carry on with: the run stops.
    lm = ScriptedLM([tool_turn("Add.", "add", a=1, b=2), finish_turn("Never reached.")])
    with dspy.context(lm=lm), pytest.raises(BridgeLost):
        await dspy.ReAct("question -> answer", tools=[add]).acall(question="1 + 2?")
    assert lm.used == 1
    await bridge.close()


async def test_the_script_must_cover_every_lm_call(bridge: GRPCToolBridge) -> None:
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["add"]))
    # DSPy wraps what the LM raises in its own error type.
    lm = ScriptedLM([tool_turn("Add.", "add", a=1, b=2)])
    with (
        dspy.context(lm=lm),
        pytest.raises(Exception, match="all 1 turns of the scripted LM are used") as info,
    ):
        await agent.acall(question="1 + 2?")
    assert isinstance(info.value.__cause__, ScriptExhaustedError)


async def test_an_uninitialized_or_closed_bridge_says_what_to_do(host: HostProcess) -> None:
    bridge = GRPCToolBridge(host.target)
    with pytest.raises(Exception, match=r"call await bridge.initialize\(session_id\)"):
        bridge.get_dspy_tools()
    await bridge.initialize()
    tool = bridge.get_dspy_tool("add")
    await bridge.cleanup()
    with pytest.raises(BridgeLost, match="not initialized \\(or was closed\\)"):
        await tool.acall(a=1, b=2)


def test_import_toolbridge_does_not_import_dspy() -> None:
    code = "import sys, toolbridge; sys.exit('dspy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


PARSER_SCHEMAS: dict[str, dict[str, Any]] = {
    "n": {"type": "integer", "minimum": 0},
    "text": {"type": "string", "maxLength": 5},
    "mode": {"type": "string", "enum": ["fast", "exact"]},
    "xs": {"type": "array", "items": {"type": "number"}},
    "opts": {"type": "object", "additionalProperties": {"type": "boolean"}},
    "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    "loose": {},
    # One plain type each: the parser skips the validator for a value of exactly that type.
    "i": {"type": "integer"},
    "f": {"type": "number", "description": "a float"},
    "s": {"type": "string", "title": "S"},
    "b": {"type": "boolean"},
    "arr": {"type": "array"},
    "obj": {"type": "object"},
    "z": {"type": "null"},
}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 3, "text": "abc", "mode": "fast", "xs": [1, 2.5], "opts": {"a": True}},
        {"n": "3"},
        {"n": -1},
        {"n": 2.0},
        {"text": "too long"},
        {"mode": "slow"},
        {"xs": [1, "two"]},
        {"opts": {"a": "yes"}},
        {"either": 4},
        {"either": [4]},
        {"loose": {"anything": [1, None]}},
        {"unknown": 1},
        {"i": 7, "f": 1.5, "s": "x", "b": False, "arr": [1], "obj": {"k": 1}, "z": None},
        {"i": True},
        {"i": 2.0},
        {"i": 2.5},
        {"f": True},
        {"f": 3},
        {"s": 5},
        {"b": 1},
        {"arr": (1, 2)},
        {"obj": [("k", 1)]},
        {"z": 0},
    ],
    ids=lambda kwargs: ",".join(f"{k}={v!r}" for k, v in kwargs.items()),
)
def test_argument_checks_match_dspy_tools_own(kwargs: dict[str, Any]) -> None:
    # dspy.Tool's own (private) check is the reference: the prepared parser must agree with it.
    args = {name: dict(schema) for name, schema in PARSER_SCHEMAS.items()}
    arg_types = {name: json_schema_type(schema) for name, schema in args.items()}

    def target(
        n: Any = None, text: Any = None, mode: Any = None, xs: Any = None, opts: Any = None,
        either: Any = None, loose: Any = None, i: Any = None, f: Any = None, s: Any = None,
        b: Any = None, arr: Any = None, obj: Any = None, z: Any = None,
    ) -> None: ...  # fmt: skip

    reference = dspy.Tool(target, name="t", desc="", args=args, arg_types=arg_types)
    assert reference.has_kwargs is False
    parser = ArgumentParser(args, arg_types, has_kwargs=False)
    expected: Any
    try:
        expected = reference._validate_and_parse_args(**kwargs)
    except (ValueError, TypeError) as error:
        expected = error
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)) as caught:
            parser.parse(kwargs)
        if not hasattr(expected, "errors"):  # pydantic's messages name DSPy's wrapper model
            assert str(caught.value) == str(expected)
    else:
        parsed = parser.parse(kwargs)
        assert parsed == expected
        assert [type(v) for v in parsed.values()] == [type(v) for v in expected.values()]
