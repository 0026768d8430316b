"""Tool schemas with references, required arguments and number results, through real DSPy and the real host.

The host serves testdata/tools/dspy-tools.ts: a named schema (`area`), a named schema inside
another (`ship_parcel`), a recursive one (`count_nodes`) and an output schema with numbers
(`quote`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import dspy
import jsonschema
import pytest

from toolbridge import HostProcess
from toolbridge.agent import AgentRun, SessionAgents
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.dspy import (
    INVALID_ARGUMENTS,
    BridgeTool,
    GRPCToolBridge,
    SchemaResolver,
    ToolErrorObservation,
)

from .conftest import REPO_ROOT, TEST_TOOLS, spawn_host

DSPY_TOOLS = REPO_ROOT / "testdata" / "tools" / "dspy-tools.ts"

DIMENSIONS = {
    "type": "object",
    "properties": {
        "width": {"type": "number", "exclusiveMinimum": 0, "description": "Width in cm"},
        "height": {"type": "number", "exclusiveMinimum": 0, "description": "Height in cm"},
    },
    "required": ["width", "height"],
}
TREE_NODE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/TreeNode"}},
    },
    "required": ["name"],
}
TREE: dict[str, Any] = {
    "name": "root",
    "children": [{"name": "a", "children": [{"name": "a1"}]}, {"name": "b", "children": []}],
}


@pytest.fixture(scope="module")
async def schema_host() -> AsyncIterator[HostProcess]:
    host = await spawn_host(tools=[TEST_TOOLS, DSPY_TOOLS])
    yield host
    assert await host.stop() == 0, host.output()


@pytest.fixture
async def bridge(schema_host: HostProcess) -> AsyncIterator[GRPCToolBridge]:
    bridge = GRPCToolBridge(schema_host.target)
    await bridge.initialize()
    yield bridge
    await bridge.cleanup()


def refs_in(schema: Any) -> list[str]:
    text = json.dumps(schema)
    return [part.split('"')[0] for part in text.split('"$ref": "')[1:]]


async def test_named_and_nested_named_schemas_are_inlined(bridge: GRPCToolBridge) -> None:
    area, ship = bridge.get_dspy_tools(["area", "ship_parcel"])
    # The host sends {"$ref": "#/$defs/Dimensions"} and a top-level $defs; DSPy gets the shape.
    assert bridge.specs["area"].parameters_schema["properties"]["dimensions"] == {
        "$ref": "#/$defs/Dimensions"
    }
    assert area.args == {"dimensions": DIMENSIONS}
    assert ship.args["parcel"] == {
        "type": "object",
        "properties": {"label": {"type": "string", "minLength": 1}, "size": DIMENSIONS},
        "required": ["label", "size"],
    }
    assert refs_in(area.args) == refs_in(ship.args) == []
    assert area.arg_types == {"dimensions": dict[str, Any]}

    # ReAct's prompt shows the shapes and what is required.
    agent = dspy.ReAct("question -> answer", tools=[area, ship])
    instructions = agent.react.signature.instructions
    assert "'size': {'type': 'object', 'properties': {'width': {'type': 'number'" in instructions
    assert "Required arguments: dimensions." in instructions
    assert "Required arguments: parcel." in instructions

    lm = ScriptedLM(
        [
            tool_turn("Measure.", "area", dimensions={"width": 2.5, "height": 4}),
            tool_turn("A bad size.", "area", dimensions={"width": -1, "height": 4}),
            tool_turn("Ship it.", "ship_parcel", parcel={"label": "p1", "size": {"width": 2, "height": 3}}),
            finish_turn("Done."),
            lambda seen: answer_turn("Measured.", answer=str(seen[0])),
        ]
    )
    with dspy.context(lm=lm):
        prediction = await agent.acall(question="How big is it?")
    trajectory = prediction.trajectory
    assert trajectory["observation_0"] == 10
    invalid = trajectory["observation_1"]
    assert isinstance(invalid, ToolErrorObservation)
    assert invalid.type == INVALID_ARGUMENTS
    assert "-1 is less than or equal to the minimum of 0" in invalid
    assert trajectory["observation_2"] == {"label": "p1", "footprint": 6, "express": False, "note": ""}
    assert prediction.answer == "10"


async def test_a_recursive_schema_stays_valid_and_checks_arguments(bridge: GRPCToolBridge) -> None:
    count = bridge.get_dspy_tool("count_nodes")
    schema = count.args["tree"]
    # The first level is inlined for the LM; the recursion is a $ref into the $defs it carries.
    assert schema == {**TREE_NODE, "$defs": {"TreeNode": TREE_NODE}}
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    assert validator_class(schema).is_valid(TREE)
    assert not validator_class(schema).is_valid({"name": "x", "children": [{"nam": "y"}]})

    agent = dspy.ReAct("question -> answer", tools=[count])
    assert "'children': {'type': 'array', 'items': {'$ref': '#/$defs/TreeNode'}}" in (
        agent.react.signature.instructions
    )
    lm = ScriptedLM(
        [
            tool_turn("Count.", "count_nodes", tree=TREE),
            # A deep mistake: the LM reads the check's message, the run goes on.
            tool_turn("Count again.", "count_nodes", tree={"name": "x", "children": [{"nam": "y"}]}),
            finish_turn("Done."),
            lambda seen: answer_turn("Counted.", answer=str(seen[0])),
        ]
    )
    with dspy.context(lm=lm):
        prediction = await agent.acall(question="How many nodes?")
    assert prediction.trajectory["observation_0"] == 4
    invalid = prediction.trajectory["observation_1"]
    assert isinstance(invalid, ToolErrorObservation)
    assert (invalid.type, "'name' is a required property" in invalid) == (INVALID_ARGUMENTS, True)
    # Sync DSPy code goes through the same checks.
    assert count(tree={"name": "solo"}) == 1


async def test_any_argument_check_failure_is_an_observation(schema_host: HostProcess) -> None:
    bridge = GRPCToolBridge(schema_host.target)
    await bridge.initialize()
    spec = bridge.specs["area"]
    # A schema the host would not send: a keyword with a value JSON Schema does not allow.
    broken = BridgeTool(
        bridge,
        type(spec)(
            **{
                **vars(spec),
                "parameters_schema": {
                    "type": "object",
                    "properties": {"dimensions": {"type": "object", "minProperties": "two"}},
                },
            }
        ),
    )
    observation = await broken.acall(dimensions={"width": 1, "height": 1})
    assert isinstance(observation, ToolErrorObservation)
    assert observation.type == INVALID_ARGUMENTS
    assert "not valid JSON Schema" in observation
    await bridge.cleanup()


async def test_native_function_calling_sends_what_the_host_requires(bridge: GRPCToolBridge) -> None:
    ship, count = bridge.get_dspy_tools(["ship_parcel", "count_nodes"])
    function = ship.format_as_litellm_function_call()["function"]
    # `express` is optional without a default, `note` has one: neither is required.
    assert function["parameters"]["required"] == ["parcel"]
    assert list(function["parameters"]["properties"]) == ["parcel", "express", "note"]

    # The recursive schema's $defs move to the parameters object, where "#/$defs/..." resolves.
    parameters = count.format_as_litellm_function_call()["function"]["parameters"]
    assert parameters["$defs"] == {"TreeNode": TREE_NODE}
    assert "$defs" not in parameters["properties"]["tree"]
    validator = jsonschema.Draft202012Validator(parameters)
    assert validator.is_valid({"tree": TREE})
    assert not validator.is_valid({"tree": {"name": "x", "children": [{"children": []}]}})

    # What DSPy's ChatAdapter sends an LM that supports function calling.
    class FunctionCallingLM(dspy.utils.DummyLM):  # type: ignore[misc]
        @property
        def supports_function_calling(self) -> bool:
            return True

    lm = FunctionCallingLM([{"answer": "shipped"}])
    predict = dspy.Predict("question, tools: list[dspy.Tool] -> answer, tool_calls: dspy.ToolCalls")
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_native_function_calling=True)):
        await predict.acall(question="Ship a parcel", tools=[ship, count])
    sent = lm.history[-1]["kwargs"]["tools"]
    assert [tool["function"]["parameters"]["required"] for tool in sent] == [["parcel"], ["tree"]]


async def test_number_results_are_floats_where_the_output_schema_says_number(
    bridge: GRPCToolBridge,
) -> None:
    quote = bridge.get_dspy_tool("quote")
    result = await quote.acall(items=2)
    assert result == {"total": 50.0, "items": 2, "lines": [25.0, 25.0]}
    assert [type(result["total"]), type(result["items"]), type(result["lines"][0])] == [float, int, float]
    assert type((await asyncio.to_thread(quote, items=1))["total"]) is float

    # An agent whose signature says float records a float, which reads back as one.
    agents = SessionAgents(bridge)
    agent_id = await agents.create_react_agent("question -> total: float", ["quote"], max_iters=3)
    lm = ScriptedLM(
        [
            tool_turn("Quote two.", "quote", items=2),
            finish_turn("Done."),
            lambda seen: answer_turn("From the quote.", total=seen[0]["total"]),
        ]
    )
    run = await agents.run_agent_with(agent_id, {"question": "Total for two?"}, lm=lm)
    assert type(run.steps[0].observation["total"]) is float
    stored = AgentRun.from_bytes(run.to_bytes())
    assert (stored.outputs["total"], type(stored.outputs["total"])) == (50.0, float)
    assert type((await agents.store.load_run(run.run_id)).outputs["total"]) is float


def test_references_resolve_by_json_schema_rules() -> None:
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/A", "description": "next to the reference"},
            "pair": {"type": "array", "items": {"$ref": "#/$defs/Pair"}},
            "lost": {"$ref": "#/$defs/Missing", "description": "kept"},
            "data": {"default": {"$ref": "#/$defs/A"}},
        },
        "$defs": {
            # Mutual recursion: A holds Bs, a B holds an A.
            "A": {"type": "object", "properties": {"bs": {"type": "array", "items": {"$ref": "#/$defs/B"}}}},
            "B": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}},
            "Pair": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"$ref": "#/$defs/Pair/prefixItems/0"}],
            },
        },
    }
    resolver = SchemaResolver(parameters)
    a = resolver.argument_schema(parameters["properties"]["a"])
    a_def = {"type": "object", "properties": {"bs": {"type": "array", "items": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}}}}  # fmt: skip
    assert a == {**a_def, "description": "next to the reference", "$defs": {"A": a_def}}
    jsonschema.Draft202012Validator.check_schema(a)
    assert jsonschema.Draft202012Validator(a).is_valid({"bs": [{"a": {"bs": []}}]})
    assert not jsonschema.Draft202012Validator(a).is_valid({"bs": [{"a": {"bs": [1]}}]})
    # A JSON pointer into another definition.
    assert resolver.argument_schema(parameters["properties"]["pair"])["items"]["prefixItems"] == [
        {"type": "integer"},
        {"type": "integer"},
    ]
    # A reference to nowhere is dropped (nothing to check locally; the host validates).
    assert resolver.argument_schema(parameters["properties"]["lost"]) == {"description": "kept"}
    # Values are data, not schemas.
    assert resolver.argument_schema(parameters["properties"]["data"]) == {"default": {"$ref": "#/$defs/A"}}
