"""What a session variable is, as data: its types, constraints, metadata, watch updates and errors (no I/O).

A session variable lives on the host, inside its session, and is shared by the
TypeScript application and every worker of the session. It has a version (bumped by
every write; a write with ``expected_version`` fails with ``VersionConflictError``
unless it matches) and may be declared with a type and constraints (a write that
breaks them fails with ``ConstraintViolationError`` and leaves the old value).
docs/variables.md describes the semantics; ``SessionContext`` is the API to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, get_args

from toolbridge.core.errors import ErrorType, InvalidValueError, ToolBridgeError
from toolbridge.core.specs import to_datetime
from toolbridge.core.values import decode_value, encode_value
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values

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


#: The class of each variable error type the host sends.
ERROR_CLASSES: dict[str, type[VariableError]] = {
    ErrorType.VARIABLE_NOT_FOUND: VariableNotFoundError,
    ErrorType.VERSION_CONFLICT: VersionConflictError,
    ErrorType.CONSTRAINT_VIOLATION: ConstraintViolationError,
}


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


#: The kind of each update a watch delivers, by its wire value (READY is not one).
UPDATE_KINDS: dict[int, UpdateKind] = {
    pb.VARIABLE_UPDATE_KIND_INITIAL: "initial",
    pb.VARIABLE_UPDATE_KIND_SET: "set",
    pb.VARIABLE_UPDATE_KIND_DELETED: "deleted",
    pb.VARIABLE_UPDATE_KIND_SESSION_ENDED: "session_ended",
}
