"""Session variables on the wire: their Python types, errors, and the RPCs behind SessionContext.

A session variable lives on the host, inside its session, and is shared by the
TypeScript application and every worker of the session. It has a version (bumped by
every write; a write with ``expected_version`` fails with ``VersionConflictError``
unless it matches) and may be declared with a type and constraints (a write that
breaks them fails with ``ConstraintViolationError`` and leaves the old value).
docs/variables.md describes the semantics; ``SessionContext`` is the API to use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Literal, get_args

import grpc

from toolbridge.errors import (
    SESSION_ERROR_TYPES,
    ErrorType,
    InvalidValueError,
    ToolBridgeError,
    ToolCommunicationError,
)
from toolbridge.transport import AioTransport, error_from_info, to_datetime
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values
from toolbridge.values import decode_value, encode_value

VariableType = Literal[
    "any",
    "boolean",
    "integer",
    "float",
    "string",
    "bytes",
    "timestamp",
    "choice",
    "list",
    "map",
    "embedding",
    "tensor",
]
#: The types a variable can be declared with.
VARIABLE_TYPES: Final[tuple[str, ...]] = get_args(VariableType)

#: What this client records as the writer of its writes.
CREATED_BY: Final = "python"
#: Longest variable name the host accepts (names: a letter or _, then letters, digits, _ . -).
VARIABLE_NAME_MAX: Final = 128

# ---------------------------------------------------------------------------
# Errors


class VariableError(ToolBridgeError):
    """A variable operation the host refused; ``variable_name`` names the variable."""

    def __init__(
        self, message: str, type: str, variable_name: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, type, details)
        self.variable_name = variable_name


class VariableNotFoundError(VariableError, KeyError):
    """The session has no variable of that name (also a ``KeyError``)."""

    def __str__(self) -> str:
        # KeyError would quote the message.
        return self.message


class VersionConflictError(VariableError):
    """A write or delete carried an ``expected_version`` that is not the current one."""

    @property
    def expected_version(self) -> int:
        return int(self.details.get("expected_version", 0))

    @property
    def actual_version(self) -> int:
        return int(self.details.get("actual_version", 0))


class ConstraintViolationError(VariableError, ValueError):
    """A write broke the variable's declared type or constraints; the old value stays."""

    @property
    def constraint(self) -> str:
        """The rule broken: "type", "min", "max", "min_length", "pattern", "choices", ..."""
        return str(self.details.get("constraint", ""))


_ERROR_CLASSES: dict[str, type[VariableError]] = {
    ErrorType.VARIABLE_NOT_FOUND: VariableNotFoundError,
    ErrorType.VERSION_CONFLICT: VersionConflictError,
    ErrorType.CONSTRAINT_VIOLATION: ConstraintViolationError,
}


def variable_error(info: pb.ErrorInfo, name: str, session_id: str | None) -> ToolBridgeError:
    """The client error for the host's in-band error about variable ``name``."""
    error_type = info.type or ErrorType.INTERNAL_ERROR
    details: dict[str, Any] = dict(info.details)
    if error_type in SESSION_ERROR_TYPES:
        return error_from_info(info, session_id=session_id)
    if error_type == ErrorType.INVALID_VALUE:
        return InvalidValueError(details.get("reason", "invalid"), info.message, details.get("path", ""))
    cls = _ERROR_CLASSES.get(error_type, VariableError)
    return cls(info.message, error_type, name, details)


# ---------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class VariableConstraints:
    """Constraints of a declared type; which ones apply depends on the type (docs/variables.md).

    Lengths count characters for strings, bytes for bytes, items for lists, entries for maps.
    ``pattern`` is a regular expression the string must match somewhere (RE2 syntax: the host
    checks it, in linear time, and refuses backreferences and lookaround when the variable is
    declared); anchor it with ``^...$`` for a full match.
    """

    min: float | None = None
    max: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: Sequence[Any] | None = None
    shape: Sequence[int] | None = None
    dimensions: int | None = None
    item_type: str | None = None
    dtype: str | None = None

    def to_pb(self) -> pb.VariableConstraints:
        """The wire form; choices are encoded with the value codec (raises InvalidValueError)."""
        message = pb.VariableConstraints(
            pattern=self.pattern or "",
            choices=[encode_value(choice) for choice in self.choices or ()],
            shape=list(self.shape or ()),
            dimensions=self.dimensions or 0,
            item_type=self.item_type or "",
        )
        if self.min is not None:
            message.min = self.min
        if self.max is not None:
            message.max = self.max
        if self.min_length is not None:
            message.min_length = self.min_length
        if self.max_length is not None:
            message.max_length = self.max_length
        if self.dtype is not None:
            try:
                message.dtype = pb_values.DType.Value(f"DTYPE_{self.dtype.upper()}")
            except ValueError:
                raise InvalidValueError("unknown_dtype", f"unknown tensor dtype '{self.dtype}'") from None
        return message

    @classmethod
    def from_pb(cls, message: pb.VariableConstraints) -> VariableConstraints:
        return cls(
            min=message.min if message.HasField("min") else None,
            max=message.max if message.HasField("max") else None,
            min_length=message.min_length if message.HasField("min_length") else None,
            max_length=message.max_length if message.HasField("max_length") else None,
            pattern=message.pattern or None,
            choices=tuple(decode_value(c) for c in message.choices) or None,
            shape=tuple(message.shape) or None,
            dimensions=message.dimensions or None,
            item_type=message.item_type or None,
            dtype=pb_values.DType.Name(message.dtype)[len("DTYPE_") :].lower() if message.dtype else None,
        )


@dataclass(frozen=True)
class VariableInfo:
    """Everything about a variable except its value."""

    name: str
    #: Bumped by every write (and by the delete that ends it).
    version: int
    #: The declared type, or the type of the current value when ``declared`` is false.
    type: str
    declared: bool
    constraints: VariableConstraints
    #: Who wrote it first and last: the writer's principal on a host that authenticates callers,
    #: otherwise (and for the host's own API and workers) the writer's own name: "python", "typescript".
    created_by: str
    updated_by: str
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime
    #: The name the latest writer gave itself ("python", "typescript"), as claimed and unchecked.
    writer_label: str = ""

    @classmethod
    def from_pb(cls, name: str, version: int, metadata: pb.VariableMetadata) -> VariableInfo:
        return cls(
            name=name,
            version=version,
            type=metadata.type,
            declared=metadata.declared,
            constraints=VariableConstraints.from_pb(metadata.constraints),
            created_by=metadata.created_by,
            updated_by=metadata.updated_by,
            tags=dict(metadata.tags),
            created_at=to_datetime(metadata.created_at),
            updated_at=to_datetime(metadata.updated_at),
            writer_label=metadata.writer_label,
        )


@dataclass(frozen=True)
class Variable(VariableInfo):
    value: Any = field(default=None)

    @classmethod
    def from_message(cls, message: pb.Variable) -> Variable:
        info = VariableInfo.from_pb(message.name, message.version, message.metadata)
        return cls(
            **{f: getattr(info, f) for f in info.__dataclass_fields__}, value=decode_value(message.value)
        )


UpdateKind = Literal["initial", "set", "deleted", "session_ended"]


@dataclass(frozen=True)
class VariableUpdate:
    """One event of a watch, in commit order."""

    #: "initial" (current value when the watch started), "set", "deleted", or "session_ended" (the last).
    kind: UpdateKind
    session_id: str
    #: Empty for "session_ended".
    name: str
    version: int
    #: The variable after an "initial" or "set" update.
    variable: Variable | None = None
    #: Why the session ended: "cleanup", "expired" or "shutdown".
    reason: str = ""
    #: Position of a "set" or "deleted" change in the session's sequence of changes (for
    #: "initial": the snapshot's); pass the last one seen as ``resume_after`` to resume a watch.
    sequence: int = 0

    @property
    def value(self) -> Any:
        return self.variable.value if self.variable is not None else None


_KINDS: dict[int, UpdateKind] = {
    pb.VARIABLE_UPDATE_KIND_INITIAL: "initial",
    pb.VARIABLE_UPDATE_KIND_SET: "set",
    pb.VARIABLE_UPDATE_KIND_DELETED: "deleted",
    pb.VARIABLE_UPDATE_KIND_SESSION_ENDED: "session_ended",
}


# ---------------------------------------------------------------------------
# RPCs


def _encode_for(name: str, value: Any) -> pb_values.Value:
    try:
        return encode_value(value)
    except InvalidValueError as error:
        raise InvalidValueError(
            error.reason, f"the value of variable '{name}': {error.message}", error.path
        ) from None


def write_request(
    session_id: str,
    name: str,
    value: Any,
    *,
    tags: Mapping[str, str] | None = None,
    expected_version: int | None = None,
    create_if_missing: bool = True,
    type: str = "",
    constraints: VariableConstraints | None = None,
) -> pb.SetVariableRequest:
    try:
        encoded_constraints = constraints.to_pb() if constraints is not None else None
    except InvalidValueError as error:
        raise InvalidValueError(error.reason, f"a constraint of variable '{name}': {error.message}") from None
    request = pb.SetVariableRequest(
        session_id=session_id,
        variable_name=name,
        value=_encode_for(name, value),
        metadata=pb.VariableMetadata(
            type=type, created_by=CREATED_BY, tags=dict(tags or {}), constraints=encoded_constraints
        ),
        create_if_missing=create_if_missing,
    )
    if expected_version is not None:
        if expected_version < 0:
            raise ValueError(f"expected_version {expected_version} is negative")
        request.expected_version = expected_version
    return request


async def get_variable(transport: AioTransport, session_id: str, name: str) -> Variable:
    request = pb.GetVariableRequest(session_id=session_id, variable_name=name, include_metadata=True)
    response = await transport.unary("GetSessionVariable", transport.stub.GetSessionVariable, request)
    if not response.exists:
        raise variable_error(response.error, name, session_id)
    return Variable.from_message(
        pb.Variable(name=name, value=response.value, version=response.version, metadata=response.metadata)
    )


async def set_variable(transport: AioTransport, request: pb.SetVariableRequest) -> VariableInfo:
    response = await transport.unary("SetSessionVariable", transport.stub.SetSessionVariable, request)
    if not response.success:
        raise variable_error(response.error, request.variable_name, request.session_id)
    return VariableInfo.from_pb(request.variable_name, response.version, response.metadata)


async def delete_variable(
    transport: AioTransport, session_id: str, name: str, expected_version: int | None = None
) -> None:
    request = pb.DeleteVariableRequest(session_id=session_id, variable_name=name)
    if expected_version is not None:
        request.expected_version = expected_version
    response = await transport.unary("DeleteSessionVariable", transport.stub.DeleteSessionVariable, request)
    if not response.success:
        raise variable_error(response.error, name, session_id)


async def list_variables(transport: AioTransport, session_id: str, prefix: str = "") -> list[Variable]:
    request = pb.ListVariablesRequest(session_id=session_id, prefix=prefix)
    response = await transport.unary("ListSessionVariables", transport.stub.ListSessionVariables, request)
    if not response.success:
        raise variable_error(response.error, prefix, session_id)
    return [Variable.from_message(v) for v in response.variables]


class VariableWatch:
    """A running WatchSessionVariables call: ``async for update in watch``.

    ``await watch.ready()`` (or ``async with watch``) returns once the host's READY update
    arrived: the watch is registered, so every write committed afterwards arrives. READY
    itself is not yielded. Iteration ends after the
    "session_ended" update or ``aclose()``; a failed watch (unknown session, bad names,
    a reader too far behind) raises its error from the iteration. It reads from the
    stream only as fast as it is iterated, so a slow reader is held back by gRPC flow
    control; one that falls too far behind gets a ``ResourceExhausted`` error instead
    of missing updates, and can watch again with ``include_initial=True``. A watch that
    ended (its connection dropped, the host restarted) continues without gap or duplicate
    when watched again with ``resume_after`` set to the ``sequence`` of the last update seen.
    """

    def __init__(
        self,
        transport: AioTransport,
        session_id: str,
        names: Iterable[str] = (),
        include_initial: bool = False,
        resume_after: int | None = None,
    ) -> None:
        self.session_id = session_id
        request = pb.WatchVariablesRequest(
            session_id=session_id, variable_names=list(names), include_initial_values=include_initial
        )
        if resume_after is not None:
            if resume_after < 0:
                raise ValueError(f"resume_after {resume_after} is negative")
            request.resume_after_sequence = resume_after
        self._call = transport.stub.WatchSessionVariables(request)
        self._peeked: pb.VariableUpdate | None = None
        self._ready = False
        self._done = False
        self._closed = False

    async def ready(self) -> None:
        """Waits for the host's READY update; raises the watch's error if it failed instead."""
        if self._ready:
            return
        # The first message is READY or the error of a watch that failed; it stays peeked,
        # so that iterating skips the one and raises the other too.
        if self._peeked is None:
            self._peeked = await self._read()
        if self._peeked is not None:
            self._convert(self._peeked)
        if self._ready:
            return
        raise ToolCommunicationError(
            "WatchSessionVariables", grpc.StatusCode.UNKNOWN, "the watch ended before the host registered it"
        )

    def __aiter__(self) -> VariableWatch:
        return self

    async def __anext__(self) -> VariableUpdate:
        while not self._done:
            message = self._peeked
            self._peeked = None
            if message is None:
                message = await self._read()
            if message is None:
                break
            update = self._convert(message)
            if update is None:
                continue
            if update.kind == "session_ended":
                self._done = True
            return update
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stops the watch (cancels the call); an iteration in progress ends."""
        self._closed = True
        self._done = True
        self._call.cancel()

    async def __aenter__(self) -> VariableWatch:
        await self.ready()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _read(self) -> pb.VariableUpdate | None:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as error:
            self._done = True
            if self._closed:
                return None
            raise self._transport_error(error) from error
        if not isinstance(message, pb.VariableUpdate):  # grpc.aio.EOF: the stream ended
            self._done = True
            if self._closed:
                return None
            raise ToolCommunicationError(
                "WatchSessionVariables",
                grpc.StatusCode.UNKNOWN,
                "the variable watch ended without a session_ended update or an error",
            )
        return message

    def _convert(self, message: pb.VariableUpdate) -> VariableUpdate | None:
        """The update a message carries (None for READY); raises the error of a failed watch."""
        if message.HasField("error"):
            self._done = True
            raise variable_error(message.error, message.variable_name, self.session_id)
        if message.kind == pb.VARIABLE_UPDATE_KIND_READY:
            self._ready = True
            return None
        kind = _KINDS.get(message.kind)
        if kind is None:
            return None  # a kind this client does not know yet
        if kind in ("initial", "set"):
            variable = Variable.from_message(
                pb.Variable(
                    name=message.variable_name,
                    value=message.value,
                    version=message.version,
                    metadata=message.metadata,
                )
            )
            return VariableUpdate(
                kind,
                message.session_id,
                message.variable_name,
                message.version,
                variable,
                sequence=message.sequence,
            )
        if kind == "deleted":
            return VariableUpdate(
                kind, message.session_id, message.variable_name, message.version, sequence=message.sequence
            )
        return VariableUpdate(kind, message.session_id, "", 0, reason=message.end_reason)

    def _transport_error(self, error: grpc.aio.AioRpcError) -> ToolCommunicationError:
        return ToolCommunicationError("WatchSessionVariables", error.code(), error.details() or "")
