"""The stored form of agent records (proto/toolbridge/v1/agents.proto) in Python.

packages/server/test/agent-records.test.ts runs tests/agent_records.py against a TypeScript
host in both directions; these check the Python half on its own.
"""

from __future__ import annotations

from dataclasses import replace

from toolbridge.agent import AgentDefinition, AgentRun
from toolbridge.v1 import agents_pb2 as pb

from .agent_records import differences, expected_definition, expected_runs


def test_the_shared_records_round_trip_through_their_bytes() -> None:
    definition = expected_definition()
    assert AgentDefinition.from_bytes(definition.to_bytes()) == definition
    for run in expected_runs():
        back = AgentRun.from_bytes(run.to_bytes())
        assert back == run
        assert differences("run", back, run) == []


def test_the_bytes_are_the_proto_message() -> None:
    run = expected_runs()[0]
    message = pb.AgentRun.FromString(run.to_bytes())
    assert message.status == pb.AGENT_RUN_STATUS_SUCCEEDED
    assert [step.error_type for step in message.steps] == ["", "ToolExecutionError", "", ""]
    assert message.outputs.entries[0].value.WhichOneof("kind") == "float_value"
    assert message.steps[0].tool_args.entries[1].value.WhichOneof("kind") == "int_value"
    assert not expected_runs()[1].to_pb().HasField("finished_at")


def test_the_checker_sees_a_changed_kind_or_field() -> None:
    run = expected_runs()[0]
    assert differences("run", replace(run, outputs={"answer": 55}), run) == [
        "run.outputs: {'answer': 55}, expected {'answer': 55.5}"
    ]
    step = replace(run.steps[1], error_type=None)
    assert differences("run", replace(run, steps=(run.steps[0], step, *run.steps[2:])), run) == [
        "run.steps[1].error_type: None, expected 'ToolExecutionError'"
    ]
