"""What a stored agent is, as plain data: its definition, and the agent errors.

A live ``dspy.ReAct`` cannot travel to the host, so the session keeps an agent's *definition*
(signature, tool names, max_iters, instructions) and every worker rebuilds the agent from it.
Its runs are recorded as data too (``toolbridge.agent.records``). Both have one schema for
both languages, the messages of ``proto/toolbridge/v1/agents.proto``: ``to_pb``/``from_pb``
convert, ``to_bytes``/``from_bytes`` give the stored form.
"""

from __future__ import annotations

import os
import re
import socket
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import DecodeError, Message

from toolbridge.core.errors import ErrorType, ToolBridgeError
from toolbridge.core.specs import to_datetime, to_timestamp
from toolbridge.v1 import agents_pb2 as pb

if TYPE_CHECKING:
    import dspy

_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_PLACEHOLDER_DESC = re.compile(r"\$\{\w+\}")

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


def worker_name() -> str:
    """Who ran or created something, for the record: ``python <pid>@<host>``."""
    return f"python {os.getpid()}@{socket.gethostname()}"


def utc_now() -> datetime:
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
    created_at: datetime = field(default_factory=utc_now)
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
            created_at=to_timestamp(self.created_at),
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
            created_at=to_datetime(message.created_at),
            created_by=message.created_by,
        )

    def to_bytes(self) -> bytes:
        """The stored form: the serialized message."""
        return self.to_pb().SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: Any) -> AgentDefinition:
        """A definition from its stored form; ``AgentDefinitionError`` when ``data`` is not one."""
        return cls.from_pb(parse_stored(pb.AgentDefinition, data, "agent definition"))


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


M = TypeVar("M", bound=Message)


def parse_stored(cls: type[M], data: Any, what: str) -> M:
    """The message ``cls`` from its stored bytes; ``AgentDefinitionError`` when ``data`` is not one."""
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
