"""What the host says about sessions and tools, as plain dataclasses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Literal

from google.protobuf.timestamp_pb2 import Timestamp as PbTimestamp

from toolbridge.core.values import decode_value
from toolbridge.v1 import toolbridge_pb2 as pb


class _NoDefault(Enum):
    NO_DEFAULT = "NO_DEFAULT"

    def __repr__(self) -> str:
        return "NO_DEFAULT"


#: The ``default`` of a parameter the host does not fill in when it is omitted.
NO_DEFAULT: Final = _NoDefault.NO_DEFAULT


def to_datetime(ts: PbTimestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime."""
    return ts.ToDatetime(tzinfo=UTC)


def to_timestamp(value: datetime) -> PbTimestamp:
    """A datetime as a protobuf Timestamp."""
    stamp = PbTimestamp()
    stamp.FromDatetime(value)
    return stamp


@dataclass(frozen=True)
class Session:
    session_id: str
    tool_count: int
    capabilities: tuple[str, ...]
    #: False when a live session with this id existed and the client attached to it.
    created: bool

    @classmethod
    def from_pb(cls, response: pb.InitializeSessionResponse) -> Session:
        return cls(
            session_id=response.session_id,
            tool_count=response.tool_count,
            capabilities=tuple(response.capabilities),
            created=response.created,
        )


@dataclass(frozen=True)
class SessionDetails:
    session_id: str
    metadata: dict[str, str]
    created_at: datetime
    last_accessed_at: datetime
    expires_at: datetime
    tool_count: int
    variable_count: int
    #: The principal that owns the session ("@anonymous" on a host without authentication).
    owner: str = ""

    @classmethod
    def from_pb(cls, info: pb.SessionInfo) -> SessionDetails:
        return cls(
            session_id=info.session_id,
            metadata=dict(info.metadata),
            created_at=to_datetime(info.created_at),
            last_accessed_at=to_datetime(info.last_accessed_at),
            expires_at=to_datetime(info.expires_at),
            tool_count=info.tool_count,
            variable_count=info.variable_count,
            owner=info.owner,
        )


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    #: The JSON Schema type ("string", "integer", "number", "boolean", "array", "object", "any", ...).
    type: str
    description: str
    required: bool
    #: The default the host applies when the argument is omitted; ``NO_DEFAULT`` if none.
    default: Any = NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    streaming: bool
    #: The parameters as a JSON Schema object (from the host's zod schema).
    parameters_schema: dict[str, Any]
    #: JSON Schema of the result (of each chunk, for a streaming tool); None when the tool declares none.
    output_schema: dict[str, Any] | None
    parameters: tuple[ParameterSpec, ...]
    #: The longest a call may run (a streaming tool: its total budget); 0 is the host's default.
    timeout_ms: int
    #: Streaming tools: the longest wait for the next chunk; 0 is the host's default.
    idle_timeout_ms: int
    max_concurrent_calls: int
    rate_limit_per_minute: int
    #: A pure tool: the same arguments always give the same result, so results may be cached.
    cacheable: bool
    #: Safe to call again after a failure whose outcome is unknown (retries rely on it).
    idempotent: bool
    scope: Literal["global", "session"]
    metadata: dict[str, str]

    @classmethod
    def from_pb(cls, spec: pb.ToolSpec) -> ToolSpec:
        return cls(
            name=spec.name,
            description=spec.description,
            streaming=spec.type == pb.TOOL_TYPE_STREAMING,
            parameters_schema=json.loads(spec.parameters_schema or "{}"),
            output_schema=json.loads(spec.output_schema) if spec.output_schema else None,
            parameters=tuple(
                ParameterSpec(
                    name=p.name,
                    type=p.type,
                    description=p.description,
                    required=p.required,
                    default=decode_value(p.default_value) if p.HasField("default_value") else NO_DEFAULT,
                )
                for p in spec.parameters
            ),
            timeout_ms=spec.limits.timeout_ms,
            idle_timeout_ms=spec.limits.idle_timeout_ms,
            max_concurrent_calls=spec.limits.max_concurrent_calls,
            rate_limit_per_minute=spec.limits.rate_limit_per_minute,
            cacheable=spec.cacheable,
            idempotent=spec.idempotent,
            scope="session" if spec.scope == pb.TOOL_SCOPE_SESSION else "global",
            metadata=dict(spec.metadata),
        )
