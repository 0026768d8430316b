"""ReAct agents from definitions: building, running, recording runs, and their stored form."""

from __future__ import annotations

from typing import Literal

import dspy
import pydantic
import pytest

from toolbridge.agent import (
    AgentDefinition,
    AgentDefinitionError,
    AgentError,
    AgentRun,
    AgentRunError,
    AgentRunStep,
    ProgressEvent,
    SessionAgents,
)
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.dspy import GRPCToolBridge


def add_then_fail_script() -> ScriptedLM:
    return ScriptedLM(
        [
            tool_turn("Add 2 and 3.", "add", a=2, b=3),
            tool_turn("Try the failing tool.", "fail", message="nope"),
            lambda seen: tool_turn("Add 10 to the sum.", "add", a=seen[0], b=10),
            finish_turn("Done."),
            lambda seen: answer_turn("The last sum.", answer=str(seen[2])),
        ]
    )


class QA(dspy.Signature):  # type: ignore[misc]  # dspy is untyped
    """Answer with a number."""

    question: str = dspy.InputField(desc="an arithmetic question")
    context: list[str] = dspy.InputField()
    answer: float = dspy.OutputField(desc="the result")
    unit: Literal["none", "eur"] = dspy.OutputField()


def test_a_definition_keeps_the_signature_its_types_descriptions_and_instructions() -> None:
    definition = AgentDefinition.create(QA, ["add"], 3)
    assert definition.signature == (
        "question: str, context: list[str] -> answer: float, unit: Literal['none', 'eur']"
    )
    assert definition.instructions == "Answer with a number."
    assert dict(definition.field_descs) == {"question": "an arithmetic question", "answer": "the result"}
    assert definition.agent_id.startswith("react_")

    stored = AgentDefinition.from_bytes(definition.to_bytes())
    assert stored == definition
    rebuilt = stored.dspy_signature()
    assert rebuilt.instructions == "Answer with a number."
    assert list(rebuilt.input_fields) == ["question", "context"]
    assert rebuilt.output_fields["answer"].annotation is float
    assert rebuilt.output_fields["unit"].annotation == Literal["none", "eur"]
    assert rebuilt.input_fields["question"].json_schema_extra["desc"] == "an arithmetic question"

    plain = AgentDefinition.create("question -> answer", ["add"], instructions="Be brief.", agent_id="calc")
    assert plain.instructions == "Be brief."
    assert (plain.agent_id, plain.signature, plain.instructions) == (
        "calc",
        "question -> answer",
        "Be brief.",
    )


def test_definitions_refuse_what_could_not_run() -> None:
    with pytest.raises(AgentDefinitionError, match="invalid signature"):
        AgentDefinition.create("question answer", ["add"])
    with pytest.raises(AgentDefinitionError, match="at least one tool"):
        AgentDefinition.create("question -> answer", [])
    with pytest.raises(AgentDefinitionError, match="clashes with ReAct's own 'finish' tool"):
        AgentDefinition.create("question -> answer", ["finish"])
    with pytest.raises(AgentDefinitionError, match="max_iters must be an integer from 1 to 100"):
        AgentDefinition.create("question -> answer", ["add"], 0)
    with pytest.raises(AgentDefinitionError, match="agent id 'has space'"):
        AgentDefinition.create("question -> answer", ["add"], agent_id="has space")

    class Item(pydantic.BaseModel):
        name: str

    custom = dspy.Signature({"q": (str, dspy.InputField()), "item": (Item, dspy.OutputField())})
    with pytest.raises(
        AgentDefinitionError, match="field 'item' has type Item, which a worker cannot rebuild"
    ):
        AgentDefinition.create(custom, ["add"])
    with pytest.raises(AgentDefinitionError, match="malformed agent definition"):
        AgentDefinition.from_bytes(b"\xff\xff")
    with pytest.raises(AgentDefinitionError, match="no agent id or signature"):
        AgentDefinition.from_bytes(b"")
    with pytest.raises(AgentDefinitionError, match="not an agent definition: expected the bytes of"):
        AgentDefinition.from_bytes({"kind": "react_agent"})


def test_a_run_round_trips_through_its_stored_form() -> None:
    run = AgentRun.start("react_x", {"question": "q"}, lm="dummy")
    done = run.succeeded(
        [
            AgentRunStep("t", "add", {"a": 1}, 2),
            AgentRunStep("t2", "fail", {}, "Tool 'fail' failed", "Boom"),
        ],
        {"answer": 2.0, "model": object()},
        "because",
    )
    stored = AgentRun.from_bytes(done.to_bytes())
    assert stored.status == "succeeded"
    assert stored.steps == done.steps
    assert stored.outputs["answer"] == 2.0
    assert stored.outputs["model"].startswith("<object object")  # what the bridge cannot carry becomes text
    assert stored.finished_at is not None
    assert stored.started_at.tzinfo is not None
    failed = AgentRun.from_bytes(run.failed(RuntimeError("lm down")).to_bytes())
    assert (failed.status, failed.error) == ("failed", "RuntimeError: lm down")
    assert AgentRun.from_bytes(run.to_bytes()) == run, "a running run has no finished_at"
    with pytest.raises(AgentDefinitionError, match="malformed agent run"):
        AgentRun.from_bytes(b"")


async def test_an_agent_runs_from_its_definition_and_reports_each_step(bridge: GRPCToolBridge) -> None:
    definition = AgentDefinition.create("question -> answer", ["add", "fail"], 5)
    events: list[ProgressEvent] = []
    run = await SessionAgents(bridge).run_definition(
        definition, {"question": "2 + 3 + 10?"}, lm=add_then_fail_script(), on_progress=events.append
    )
    assert run.status == "succeeded"
    assert run.outputs == {"answer": "15"}
    assert run.reasoning == "The last sum."
    assert run.lm == "dummy"
    assert run.run_id.startswith(definition.agent_id + "_")
    assert [(s.tool_name, dict(s.tool_args), s.observation, s.error_type) for s in run.steps] == [
        ("add", {"a": 2, "b": 3}, 5, None),
        ("fail", {"message": "nope"}, "Tool 'fail' failed (ToolExecutionError): nope", "ToolExecutionError"),
        ("add", {"a": 5, "b": 10}, 15, None),
        ("finish", {}, "Completed.", None),
    ]
    assert [s.thought for s in run.steps] == [
        "Add 2 and 3.",
        "Try the failing tool.",
        "Add 10 to the sum.",
        "Done.",
    ]
    assert [e.kind for e in events] == [
        "run_started",
        *["thought", "tool_call", "observation"] * 4,
        "run_finished",
    ]
    assert events[-1].run == run
    observed = [e for e in events if e.kind == "observation"]
    assert [e.step for e in observed] == [0, 1, 2, 3]
    assert observed[1].error_type == "ToolExecutionError"


async def test_a_failing_lm_fails_the_run_with_what_it_had_done(bridge: GRPCToolBridge) -> None:
    definition = AgentDefinition.create("question -> answer", ["add"], 5)
    lm = ScriptedLM([tool_turn("Add.", "add", a=1, b=2)])
    with pytest.raises(AgentRunError, match=f"agent {definition.agent_id} run .* failed") as info:
        await SessionAgents(bridge).run_definition(definition, {"question": "1 + 2?"}, lm=lm)
    failed = info.value.run
    assert failed.status == "failed"
    assert "all 1 turns of the scripted LM are used" in failed.error
    assert [(s.tool_name, s.observation) for s in failed.steps] == [("add", 3)]


async def test_runs_check_inputs_lm_and_tools_first(bridge: GRPCToolBridge) -> None:
    agents = SessionAgents(bridge)
    definition = AgentDefinition.create("question, context -> answer", ["add"])
    with pytest.raises(AgentError, match="takes inputs question, context; missing: context; unknown: extra"):
        await agents.run_definition(definition, {"question": "q", "extra": 1}, lm=add_then_fail_script())
    with dspy.context(lm=None), pytest.raises(AgentError, match="no language model"):
        await agents.run_definition(definition, {"question": "q", "context": "c"})
    gone = AgentDefinition.create("question -> answer", ["add", "retired_tool"])
    with pytest.raises(AgentDefinitionError, match="uses tools the session does not have: retired_tool"):
        agents.build_react_agent(gone)
    with pytest.raises(Exception, match="retired_tool"):
        await agents.create_react_agent("question -> answer", ["add", "retired_tool"])
    assert await agents.store.list_definitions() == [], "nothing is stored for an agent that cannot run"
