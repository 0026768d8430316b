"""What a recorded run is, as plain data: its steps, its live progress, and the store interface
that keeps definitions and runs.

A run is recorded as data (inputs, steps, outputs), so the TypeScript side can read it; its
schema is ``toolbridge.v1.AgentRun`` (``proto/toolbridge/v1/agents.proto``), the same in both
languages.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from toolbridge.agent.model import (
    AgentDefinition,
    AgentDefinitionError,
    AgentError,
    parse_stored,
    utc_now,
    worker_name,
)
from toolbridge.core.errors import ErrorType, ToolBridgeError
from toolbridge.core.specs import to_datetime, to_timestamp
from toolbridge.core.values import decode_value, encode_value
from toolbridge.v1 import agents_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values

AgentRunStatus = Literal["running", "succeeded", "failed"]

_STATUS_TO_PB: dict[str, pb.AgentRunStatus.ValueType] = {
    "running": pb.AGENT_RUN_STATUS_RUNNING,
    "succeeded": pb.AGENT_RUN_STATUS_SUCCEEDED,
    "failed": pb.AGENT_RUN_STATUS_FAILED,
}
_STATUS_FROM_PB: dict[int, AgentRunStatus] = {
    pb.AGENT_RUN_STATUS_RUNNING: "running",
    pb.AGENT_RUN_STATUS_SUCCEEDED: "succeeded",
    pb.AGENT_RUN_STATUS_FAILED: "failed",
}


class AgentRunError(AgentError):
    """The agent's run failed (the LM call failed, a transport error, ...); the run is recorded as failed."""

    def __init__(self, run: AgentRun, cause: BaseException) -> None:
        super().__init__(
            f"agent {run.agent_id} run {run.run_id} failed: {type(cause).__name__}: {cause}",
            cause.type if isinstance(cause, ToolBridgeError) else ErrorType.INTERNAL_ERROR,
        )
        self.run = run


# -- runs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRunStep:
    """One ReAct iteration: the thought, the tool call it chose, and what came back."""

    thought: str
    tool_name: str
    tool_args: Mapping[str, Any]
    observation: Any
    #: The error type when the observation is a failed call (``ToolErrorObservation``), else None.
    error_type: str | None = None
    #: When the step began (the LM was asked for its thought) and when its tool call ended;
    #: None in records written before steps were timed.
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_pb(self) -> pb.AgentRunStep:
        """The ``toolbridge.v1.AgentRunStep`` message (values the bridge cannot carry as text)."""
        message = pb.AgentRunStep(
            thought=self.thought,
            tool_name=self.tool_name,
            tool_args=_map_to_pb(self.tool_args),
            observation=encode_value(storable(self.observation)),
            error_type=self.error_type or "",
        )
        if self.started_at is not None:
            message.started_at.CopyFrom(to_timestamp(self.started_at))
        if self.finished_at is not None:
            message.finished_at.CopyFrom(to_timestamp(self.finished_at))
        return message

    @classmethod
    def from_pb(cls, message: pb.AgentRunStep) -> AgentRunStep:
        return cls(
            thought=message.thought,
            tool_name=message.tool_name,
            tool_args=_map_from_pb(message.tool_args),
            observation=decode_value(message.observation),
            error_type=message.error_type or None,
            started_at=to_datetime(message.started_at) if message.HasField("started_at") else None,
            finished_at=to_datetime(message.finished_at) if message.HasField("finished_at") else None,
        )


@dataclass(frozen=True)
class AgentRun:
    """A run of a stored agent as the session records it."""

    run_id: str
    agent_id: str
    status: AgentRunStatus
    inputs: Mapping[str, Any]
    steps: tuple[AgentRunStep, ...] = ()
    #: The signature's output fields (e.g. ``{"answer": ...}``) once the run succeeded.
    outputs: Mapping[str, Any] = field(default_factory=dict)
    #: The extraction step's reasoning (ReAct's final ChainOfThought), when there is one.
    reasoning: str = ""
    error: str = ""
    started_at: datetime = field(default_factory=utc_now)
    finished_at: datetime | None = None
    worker: str = field(default_factory=worker_name)
    #: The LM that drove the run (its model string), for the record.
    lm: str = ""

    @classmethod
    def start(cls, agent_id: str, inputs: Mapping[str, Any], *, lm: str = "") -> AgentRun:
        return cls(
            run_id=f"{agent_id}_{uuid.uuid4().hex[:8]}",
            agent_id=agent_id,
            status="running",
            inputs=dict(inputs),
            lm=lm,
        )

    def with_steps(self, steps: Sequence[AgentRunStep]) -> AgentRun:
        return replace(self, steps=tuple(steps))

    def succeeded(
        self, steps: Sequence[AgentRunStep], outputs: Mapping[str, Any], reasoning: str
    ) -> AgentRun:
        return replace(
            self,
            status="succeeded",
            steps=tuple(steps),
            outputs=dict(outputs),
            reasoning=reasoning,
            finished_at=utc_now(),
        )

    def failed(
        self, error: BaseException, steps: Sequence[AgentRunStep] | None = None, *, reason: str | None = None
    ) -> AgentRun:
        """The run ended by ``error``; the record's ``error`` is ``reason``, else ``"<class>: <message>"``."""
        text = reason or (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
        return replace(
            self,
            status="failed",
            steps=tuple(steps) if steps is not None else self.steps,
            error=text,
            finished_at=utc_now(),
        )

    def to_pb(self) -> pb.AgentRun:
        """The ``toolbridge.v1.AgentRun`` message (values the bridge cannot carry as text)."""
        message = pb.AgentRun(
            run_id=self.run_id,
            agent_id=self.agent_id,
            status=_STATUS_TO_PB[self.status],
            inputs=_map_to_pb(self.inputs),
            steps=[step.to_pb() for step in self.steps],
            outputs=_map_to_pb(self.outputs),
            reasoning=self.reasoning,
            error=self.error,
            started_at=to_timestamp(self.started_at),
            worker=self.worker,
            lm=self.lm,
        )
        if self.finished_at is not None:
            message.finished_at.CopyFrom(to_timestamp(self.finished_at))
        return message

    @classmethod
    def from_pb(cls, message: pb.AgentRun) -> AgentRun:
        status = _STATUS_FROM_PB.get(message.status)
        if status is None or not message.run_id:
            raise AgentDefinitionError(
                f"malformed agent run (run id {message.run_id!r}, status {message.status}): {message}"
            )
        return cls(
            run_id=message.run_id,
            agent_id=message.agent_id,
            status=status,
            inputs=_map_from_pb(message.inputs),
            steps=tuple(AgentRunStep.from_pb(step) for step in message.steps),
            outputs=_map_from_pb(message.outputs),
            reasoning=message.reasoning,
            error=message.error,
            started_at=to_datetime(message.started_at),
            finished_at=to_datetime(message.finished_at) if message.HasField("finished_at") else None,
            worker=message.worker,
            lm=message.lm,
        )

    def to_bytes(self) -> bytes:
        """The stored form: the serialized message."""
        return self.to_pb().SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: Any) -> AgentRun:
        """A run from its stored form; ``AgentDefinitionError`` when ``data`` is not one."""
        return cls.from_pb(parse_stored(pb.AgentRun, data, "agent run"))


# -- progress -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressEvent:
    """What a running agent just did, for live output: ``kind`` is one of
    ``run_started``, ``thought``, ``tool_call``, ``observation``, ``run_finished``."""

    kind: Literal["run_started", "thought", "tool_call", "observation", "run_finished"]
    run_id: str
    step: int = -1
    text: str = ""
    tool_name: str = ""
    tool_args: Mapping[str, Any] = field(default_factory=dict)
    observation: Any = None
    error_type: str | None = None
    run: AgentRun | None = None


# -- the store ------------------------------------------------------------------------------------------


class AgentStore(Protocol):
    """Where a session keeps agent definitions and run records (session variables on the host)."""

    async def save_definition(self, definition: AgentDefinition) -> None: ...

    async def load_definition(self, agent_id: str) -> AgentDefinition:
        """Raises ``AgentNotFoundError`` when the session has no such agent."""
        ...

    async def list_definitions(self) -> list[AgentDefinition]: ...

    async def record_run(self, run: AgentRun) -> None:
        """Creates or replaces the record of ``run.run_id`` (called as the run progresses)."""
        ...

    async def load_run(self, run_id: str) -> AgentRun:
        """Raises ``AgentNotFoundError`` when the session has no such run."""
        ...

    async def list_runs(self, agent_id: str | None = None) -> list[AgentRun]: ...


# -- helpers --------------------------------------------------------------------------------------------


def storable(value: Any) -> Any:
    """``value`` if the bridge can carry it, else a faithful plain form (pydantic models dumped, else text).

    Observations and outputs are usually tool results (already bridge values) or strings, but
    a signature may declare custom output types.
    """
    try:
        encode_value(value)
        return value
    except (ToolBridgeError, TypeError, ValueError):
        pass
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return storable(dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return str(value)


def _map_to_pb(mapping: Mapping[str, Any]) -> pb_values.MapValue:
    return encode_value(storable(dict(mapping))).map_value


def _map_from_pb(message: pb_values.MapValue) -> dict[str, Any]:
    decoded: dict[str, Any] = decode_value(pb_values.Value(map_value=message))
    return decoded
