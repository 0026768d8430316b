"""The variable RPCs behind ``SessionContext``: read, write, delete and list a session's variables.

Each is a function of a transport and a session id; what a variable is lives in
``toolbridge.core.variables``, the watch in ``toolbridge.features.watch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolbridge.core.errors import SESSION_ERROR_TYPES, ErrorType, InvalidValueError, ToolBridgeError
from toolbridge.core.values import encode_value
from toolbridge.core.variables import (
    CREATED_BY,
    ERROR_CLASSES,
    Variable,
    VariableConstraints,
    VariableError,
    VariableInfo,
)
from toolbridge.transport import AioTransport, error_from_info
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values


def variable_error(info: pb.ErrorInfo, name: str, session_id: str | None) -> ToolBridgeError:
    """The client error for the host's in-band error about variable ``name``."""
    error_type = info.type or ErrorType.INTERNAL_ERROR
    details: dict[str, Any] = dict(info.details)
    if error_type in SESSION_ERROR_TYPES:
        return error_from_info(info, session_id=session_id)
    if error_type == ErrorType.INVALID_VALUE:
        return InvalidValueError(details.get("reason", "invalid"), info.message, details.get("path", ""))
    cls = ERROR_CLASSES.get(error_type, VariableError)
    return cls(info.message, error_type, name, details)


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
