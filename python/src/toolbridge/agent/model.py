"""What a stored agent and a recorded run are, as plain data, and the store interface that keeps them.

A live ``dspy.ReAct`` cannot travel to the host, so the session keeps an agent's *definition*
(signature, tool names, max_iters, instructions) and every worker rebuilds the agent from it.
Runs are recorded as data too (inputs, steps, outputs), so the TypeScript side can read them.
Both have one schema for both languages, the messages of ``proto/toolbridge/v1/agents.proto``:
``to_pb``/``from_pb`` convert, ``to_bytes``/``from_bytes`` give the stored form.
"""

from __future__ import annotations

import os
import re
import socket
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp as PbTimestamp

from toolbridge.core.errors import ErrorType, ToolBridgeError
from toolbridge.core.values import decode_value, encode_value
from toolbridge.v1 import agents_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values

if TYPE_CHECKING:
    import dspy

_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_PLACEHOLDER_DESC = re.compile(r"\$\{\w+\}")

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

#: The name dspy.ReAct gives its own "done" tool; a host tool of that name cannot be in an agent.
REACT_FINISH_TOOL = "finish"


class AgentError(ToolBridgeError):
    """Base of the agent errors."""


class AgentDefinitionError(AgentError):
    """An agent cannot be defined or rebuilt as asked (bad signature, unknown tool, bad stored data)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorType.VALIDATION_ERROR)


class AgentNotFoundError(AgentError):
    """The session has no agent (or run) with this id."""

    def __init__(self, what: str, item_id: str, session_id: str | None = None) -> None:
        where = f" in session {session_id}" if session_id else ""
        super().__init__(f"no {what} '{item_id}'{where}", ErrorType.VARIABLE_NOT_FOUND)
        self.item_id = item_id


class AgentRunError(AgentError):
    """The agent's run failed (the LM call failed, a transport error, ...); the run is recorded as failed."""

    def __init__(self, run: AgentRun, cause: BaseException) -> None:
        super().__init__(
            f"agent {run.agent_id} run {run.run_id} failed: {type(cause).__name__}: {cause}",
            cause.type if isinstance(cause, ToolBridgeError) else ErrorType.INTERNAL_ERROR,
        )
        self.run = run


def worker_name() -> str:
    """Who ran or created something, for the record: ``python <pid>@<host>``."""
    return f"python {os.getpid()}@{socket.gethostname()}"


def _now() -> datetime:
    return datetime.now(UTC)


# -- definitions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentDefinition:
    """Everything needed to rebuild a ``dspy.ReAct`` in any worker attached to the session."""

    agent_id: str
    #: DSPy string signature with field types, e.g. ``"question: str -> answer: float"``.
    signature: str
    instructions: str
    tool_names: tuple[str, ...]
    max_iters: int
    #: Field descriptions given in a class-based signature (the string form cannot carry them).
    field_descs: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime = field(default_factory=_now)
    created_by: str = field(default_factory=worker_name)

    @classmethod
    def create(
        cls,
        signature: str | type[dspy.Signature],
        tool_names: Sequence[str],
        max_iters: int = 5,
        *,
        instructions: str | None = None,
        agent_id: str | None = None,
    ) -> AgentDefinition:
        """A new definition with a fresh ``react_<hex>`` id unless one is given."""
        import dspy

        if not isinstance(max_iters, int) or isinstance(max_iters, bool) or not 1 <= max_iters <= 100:
            raise AgentDefinitionError(f"max_iters must be an integer from 1 to 100, got {max_iters!r}")
        if agent_id is not None and not _AGENT_ID.fullmatch(agent_id):
            raise AgentDefinitionError(
                f"agent id {agent_id!r} must be 1-64 letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if not tool_names:
            raise AgentDefinitionError("a ReAct agent needs at least one tool")
        if REACT_FINISH_TOOL in tool_names:
            raise AgentDefinitionError("a host tool named 'finish' clashes with ReAct's own 'finish' tool")
        try:
            parsed = dspy.Signature(signature) if isinstance(signature, str) else signature
        except Exception as error:
            raise AgentDefinitionError(f"invalid signature {signature!r}: {error}") from error
        text, descs = _signature_text(parsed)
        definition = cls(
            agent_id=agent_id or f"react_{uuid.uuid4().hex[:8]}",
            signature=text,
            instructions=instructions if instructions is not None else parsed.instructions,
            tool_names=tuple(tool_names),
            max_iters=max_iters,
            field_descs=descs,
        )
        definition.dspy_signature()  # a type the string form cannot name fails here, not in a worker
        return definition

    def dspy_signature(self) -> type[dspy.Signature]:
        """The signature, rebuilt: fields, types, descriptions and instructions."""
        import dspy

        try:
            rebuilt: type[dspy.Signature] = dspy.Signature(self.signature, self.instructions)
        except Exception as error:
            raise AgentDefinitionError(
                f"agent {self.agent_id}: cannot rebuild signature {self.signature!r} ({error}); "
                "field types must be builtins or typing constructs (str, int, list[str], Literal[...], ...)"
            ) from error
        for name, desc in self.field_descs.items():
            rebuilt = rebuilt.with_updated_fields(name, desc=desc)
        return rebuilt

    def to_pb(self) -> pb.AgentDefinition:
        """The ``toolbridge.v1.AgentDefinition`` message."""
        return pb.AgentDefinition(
            agent_id=self.agent_id,
            signature=self.signature,
            instructions=self.instructions,
            tool_names=list(self.tool_names),
            max_iters=self.max_iters,
            field_descs=dict(self.field_descs),
            created_at=_timestamp(self.created_at),
            created_by=self.created_by,
        )

    @classmethod
    def from_pb(cls, message: pb.AgentDefinition) -> AgentDefinition:
        if not message.agent_id or not message.signature:
            raise AgentDefinitionError(f"malformed agent definition (no agent id or signature): {message}")
        return cls(
            agent_id=message.agent_id,
            signature=message.signature,
            instructions=message.instructions,
            tool_names=tuple(message.tool_names),
            max_iters=message.max_iters,
            field_descs=dict(message.field_descs),
            created_at=_datetime(message.created_at),
            created_by=message.created_by,
        )

    def to_bytes(self) -> bytes:
        """The stored form: the serialized message."""
        return self.to_pb().SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: Any) -> AgentDefinition:
        """A definition from its stored form; ``AgentDefinitionError`` when ``data`` is not one."""
        return cls.from_pb(_parse(pb.AgentDefinition, data, "agent definition"))


def _signature_text(signature: type[dspy.Signature]) -> tuple[str, dict[str, str]]:
    """``"a: str, b: list[str] -> c: float"`` and the non-default field descriptions."""
    descs: dict[str, str] = {}

    def fields(items: Mapping[str, Any]) -> str:
        parts = []
        for name, info in items.items():
            extra = info.json_schema_extra or {}
            desc = extra.get("desc")
            if desc and not _PLACEHOLDER_DESC.fullmatch(str(desc)):
                descs[name] = str(desc)
            # An untyped field reads as str; keep "question -> answer" as the user wrote it.
            untyped = extra.get("IS_TYPE_UNDEFINED") or extra.get("__dspy_field_type") == "output"
            if not _portable(info.annotation):
                raise AgentDefinitionError(
                    f"field '{name}' has type {_type_text(info.annotation)}, which a worker cannot rebuild "
                    "from the stored definition; use str, int, float, bool, list[...], Literal[...], ..."
                )
            if untyped and info.annotation is str:
                parts.append(name)
            else:
                parts.append(f"{name}: {_type_text(info.annotation)}")
        return ", ".join(parts)

    return f"{fields(signature.input_fields)} -> {fields(signature.output_fields)}", descs


_PORTABLE_TYPES: frozenset[Any] = frozenset({str, int, float, bool, bytes, type(None), typing.Any})
_PORTABLE_ORIGINS: frozenset[Any] = frozenset(
    {list, dict, tuple, set, typing.Union, typing.Literal, types.UnionType}
)


def _portable(annotation: Any) -> bool:
    """Whether a worker can rebuild the type from its text alone: builtins and typing constructs of them.

    (DSPy resolves other names in a string signature from the caller's frames, so a custom class
    would rebuild here and fail in another process.)
    """
    if annotation in _PORTABLE_TYPES:
        return True
    origin = typing.get_origin(annotation)
    if origin not in _PORTABLE_ORIGINS:
        return False
    return origin is typing.Literal or all(
        arg is Ellipsis or _portable(arg) for arg in typing.get_args(annotation)
    )


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


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

    def to_pb(self) -> pb.AgentRunStep:
        """The ``toolbridge.v1.AgentRunStep`` message (values the bridge cannot carry as text)."""
        return pb.AgentRunStep(
            thought=self.thought,
            tool_name=self.tool_name,
            tool_args=_map_to_pb(self.tool_args),
            observation=encode_value(storable(self.observation)),
            error_type=self.error_type or "",
        )

    @classmethod
    def from_pb(cls, message: pb.AgentRunStep) -> AgentRunStep:
        return cls(
            thought=message.thought,
            tool_name=message.tool_name,
            tool_args=_map_from_pb(message.tool_args),
            observation=decode_value(message.observation),
            error_type=message.error_type or None,
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
    started_at: datetime = field(default_factory=_now)
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
            finished_at=_now(),
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
            finished_at=_now(),
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
            started_at=_timestamp(self.started_at),
            worker=self.worker,
            lm=self.lm,
        )
        if self.finished_at is not None:
            message.finished_at.CopyFrom(_timestamp(self.finished_at))
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
            started_at=_datetime(message.started_at),
            finished_at=_datetime(message.finished_at) if message.HasField("finished_at") else None,
            worker=message.worker,
            lm=message.lm,
        )

    def to_bytes(self) -> bytes:
        """The stored form: the serialized message."""
        return self.to_pb().SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: Any) -> AgentRun:
        """A run from its stored form; ``AgentDefinitionError`` when ``data`` is not one."""
        return cls.from_pb(_parse(pb.AgentRun, data, "agent run"))


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


M = TypeVar("M", bound=Message)


def _parse(cls: type[M], data: Any, what: str) -> M:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AgentDefinitionError(
            f"not an {what}: expected the bytes of {cls.DESCRIPTOR.full_name}, got {data!r}"
        )
    message = cls()
    try:
        message.ParseFromString(bytes(data))
    except DecodeError as error:
        raise AgentDefinitionError(f"malformed {what}: {error}") from error
    return message


def _map_to_pb(mapping: Mapping[str, Any]) -> pb_values.MapValue:
    return encode_value(storable(dict(mapping))).map_value


def _map_from_pb(message: pb_values.MapValue) -> dict[str, Any]:
    decoded: dict[str, Any] = decode_value(pb_values.Value(map_value=message))
    return decoded


def _timestamp(value: datetime) -> PbTimestamp:
    stamp = PbTimestamp()
    stamp.FromDatetime(value)
    return stamp


def _datetime(stamp: PbTimestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


__all__ = [
    "REACT_FINISH_TOOL",
    "AgentDefinition",
    "AgentDefinitionError",
    "AgentError",
    "AgentNotFoundError",
    "AgentRun",
    "AgentRunError",
    "AgentRunStatus",
    "AgentRunStep",
    "AgentStore",
    "ProgressEvent",
    "storable",
    "worker_name",
]
