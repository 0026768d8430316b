"""The Python side of the cross-language agent record test (packages/server/test/agent-records.test.ts).

    agent_records.py write --address HOST:PORT --session ID
        stores testdata/agents/records.json's definition and runs with toolbridge.agent's
        store, and prints the bytes it stored (hex, in JSON)
    agent_records.py check --address HOST:PORT --session ID
        reads them back (written by TypeScript) and compares every field with records.json

Exit status 0 when every field matched, 1 with the differences on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from toolbridge import ToolBridgeClient
from toolbridge.agent import AgentDefinition, AgentRun, AgentRunStep, SessionVariableAgentStore

RECORDS = Path(__file__).resolve().parents[2] / "testdata" / "agents" / "records.json"
FIXTURE = json.loads(RECORDS.read_text())


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def expected_definition() -> AgentDefinition:
    data = FIXTURE["definition"]
    return AgentDefinition(
        agent_id=data["agent_id"],
        signature=data["signature"],
        instructions=data["instructions"],
        tool_names=tuple(data["tool_names"]),
        max_iters=data["max_iters"],
        field_descs=data["field_descs"],
        created_at=datetime.fromisoformat(data["created_at"]),
        created_by=data["created_by"],
    )


def expected_runs() -> list[AgentRun]:
    return [
        AgentRun(
            run_id=data["run_id"],
            agent_id=data["agent_id"],
            status=data["status"],
            inputs=data["inputs"],
            steps=tuple(
                AgentRunStep(
                    s["thought"],
                    s["tool_name"],
                    s["tool_args"],
                    s["observation"],
                    s["error_type"],
                    _time(s.get("started_at")),
                    _time(s.get("finished_at")),
                )
                for s in data["steps"]
            ),
            outputs=data["outputs"],
            reasoning=data["reasoning"],
            error=data["error"],
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=_time(data["finished_at"]),
            worker=data["worker"],
            lm=data["lm"],
        )
        for data in FIXTURE["runs"]
    ]


def differences(what: str, got: Any, want: Any) -> list[str]:
    """Field by field (steps one by one), with the kind of each value: 1 and 1.0 differ."""
    found = []
    for field in fields(want):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if field.name == "steps":
            if len(a) != len(b):
                found.append(f"{what}.steps: {len(a)} steps, expected {len(b)}")
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                found += differences(f"{what}.steps[{i}]", x, y)
        elif field.name == "field_descs":  # a proto map: its order is not kept
            if dict(a) != dict(b):
                found.append(f"{what}.field_descs: {a!r}, expected {b!r}")
        elif _typed(a) != _typed(b):
            found.append(f"{what}.{field.name}: {a!r}, expected {b!r}")
    return found


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return ("map", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, value)


async def write(client: ToolBridgeClient) -> None:
    store = SessionVariableAgentStore(client)
    definition = expected_definition()
    await store.save_definition(definition)
    runs = expected_runs()
    for run in runs:
        await store.record_run(run)
    stored = {"definition": definition.to_bytes().hex(), "runs": [run.to_bytes().hex() for run in runs]}
    print(json.dumps(stored))


async def check(client: ToolBridgeClient) -> list[str]:
    store = SessionVariableAgentStore(client)
    definition = expected_definition()
    found = differences("definition", await store.load_definition(definition.agent_id), definition)
    for run in expected_runs():
        found += differences(f"run {run.run_id}", await store.load_run(run.run_id), run)
    listed = [run.run_id for run in await store.list_runs(definition.agent_id)]
    if listed != [run.run_id for run in expected_runs()]:
        found.append(f"list_runs: {listed}")
    return found


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--session", required=True)
    args = parser.parse_args(argv)
    async with ToolBridgeClient(args.address) as client:
        await client.initialize_session(args.session)
        if args.command == "write":
            await write(client)
            return 0
        found = await check(client)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
