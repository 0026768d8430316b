"""What ``python -m toolbridge.agent`` prints: readable progress on stderr, and on stdout the
JSON lines the host reads (``runPythonAgent``).

Each JSON line is one object with ``kind`` and camelCase keys, like the agent records
(``AgentRun`` as ``@toolbridge/core`` has it)::

    {"kind": "run_started", "runId": ..., "agentId": ..., "lm": ...}                  (--events)
    {"kind": "thought", "runId": ..., "step": 0, "text": ...}                          (--events)
    {"kind": "tool_call", "runId": ..., "step": 0, "toolName": ..., "toolArgs": {...}}  (--events)
    {"kind": "observation", "runId": ..., "step": 0, "toolName": ..., "observation": ...,
     "errorType": null}                                                                 (--events)
    {"kind": "run_finished", "runId": ..., "agentId": ..., "status": "succeeded", "outputs": {...},
     "error": ""}                                                                       (last line)
    {"kind": "agent_created", "agentId": ...}                                           (--create-only)

``step`` counts from 0; ``errorType`` is the error type of a failed call (the agent saw the
error as its observation), else null; ``status`` is ``succeeded`` or ``failed``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from toolbridge.agent.records import AgentRun, ProgressEvent


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _short(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else to_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def event_record(event: ProgressEvent) -> dict[str, Any] | None:
    """The JSON line of a step of the run (None for ``run_finished``: ``result_record`` closes it)."""
    if event.kind == "run_finished":
        return None
    record: dict[str, Any] = {"kind": event.kind, "runId": event.run_id}
    if event.kind == "run_started" and event.run is not None:
        record.update(agentId=event.run.agent_id, lm=event.run.lm)
    else:
        record["step"] = event.step
    if event.kind == "thought":
        record["text"] = event.text
    elif event.kind == "tool_call":
        record.update(toolName=event.tool_name, toolArgs=dict(event.tool_args))
    elif event.kind == "observation":
        record.update(toolName=event.tool_name, observation=event.observation, errorType=event.error_type)
    return record


def result_record(run: AgentRun) -> dict[str, Any]:
    """The last JSON line: how the run ended."""
    return {
        "kind": "run_finished",
        "runId": run.run_id,
        "agentId": run.agent_id,
        "status": run.status,
        "outputs": dict(run.outputs),
        "error": run.error,
    }


def created_record(agent_id: str) -> dict[str, Any]:
    """The one JSON line of ``--create-only``: the stored agent's id."""
    return {"kind": "agent_created", "agentId": agent_id}


def progress_printer(stream: TextIO | None, events: TextIO | None) -> Callable[[ProgressEvent], None]:
    """Prints ProgressEvents: readable lines on ``stream``, JSON lines on ``events``."""

    def show(event: ProgressEvent) -> None:
        if stream is not None:
            print_readable(event, stream)
        if events is not None and (record := event_record(event)) is not None:
            print(to_json(record), file=events, flush=True)

    return show


def print_readable(event: ProgressEvent, stream: TextIO) -> None:
    step = f"[step {event.step + 1}]"
    if event.kind == "run_started" and event.run is not None:
        print(f"[agent] run {event.run_id} of agent {event.run.agent_id}, LM {event.run.lm}", file=stream)
    elif event.kind == "thought":
        print(f"{step} thought: {event.text}", file=stream)
    elif event.kind == "tool_call":
        args = ", ".join(f"{k}={v!r}" for k, v in event.tool_args.items())
        print(f"{step} call {event.tool_name}({args})", file=stream)
    elif event.kind == "observation":
        marker = f"error {event.error_type}: " if event.error_type else ""
        print(f"{step} -> {marker}{_short(event.observation)}", file=stream)
    elif event.kind == "run_finished" and event.run is not None:
        print(f"[agent] {event.run.status} after {len(event.run.steps)} steps", file=stream)
    stream.flush()


def print_result(run: AgentRun) -> None:
    """The last stdout line: how the run ended."""
    print(to_json(result_record(run)), flush=True)
