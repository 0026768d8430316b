"""toolbridge: call tools hosted by a TypeScript application, and share its session state, over gRPC."""

from toolbridge.batch import execute_batch
from toolbridge.client import ToolBridgeClient, error_from_info
from toolbridge.config import GRPC_CONFIG, TOOL_BRIDGE_CONFIG, create_grpc_channel
from toolbridge.errors import (
    ErrorType,
    InvalidValueError,
    SessionError,
    ToolBridgeError,
    ToolCommunicationError,
    ToolExecutionError,
)
from toolbridge.health import health_check
from toolbridge.launcher import HostLaunchError, HostProcess, launch_host, start_host
from toolbridge.metrics import HostMetrics, ToolMetrics
from toolbridge.pool import ChannelPool
from toolbridge.proxy import AsyncGRPCProxyTool, StreamingGRPCProxyTool, build_proxy_tools
from toolbridge.retry import DEFAULT_BACKOFF, BackoffPolicy, RetryEvent, call_with_retry, retry_delay
from toolbridge.session_context import CachedSessionContext, SessionContext
from toolbridge.shutdown import GracefulShutdown, ShuttingDownError
from toolbridge.specs import NO_DEFAULT, ParameterSpec, Session, SessionDetails, ToolSpec
from toolbridge.values import Tensor, Timestamp, decode_value, encode_value
from toolbridge.variable_proxy import ContextProxyTool, VariableAwareProxyTool
from toolbridge.variables import (
    VARIABLE_TYPES,
    ConstraintViolationError,
    Variable,
    VariableConstraints,
    VariableError,
    VariableInfo,
    VariableNotFoundError,
    VariableType,
    VariableUpdate,
    VariableWatch,
    VersionConflictError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BACKOFF",
    "GRPC_CONFIG",
    "NO_DEFAULT",
    "TOOL_BRIDGE_CONFIG",
    "VARIABLE_TYPES",
    "AsyncGRPCProxyTool",
    "BackoffPolicy",
    "CachedSessionContext",
    "ChannelPool",
    "ConstraintViolationError",
    "ContextProxyTool",
    "ErrorType",
    "GracefulShutdown",
    "HostLaunchError",
    "HostMetrics",
    "HostProcess",
    "InvalidValueError",
    "ParameterSpec",
    "RetryEvent",
    "Session",
    "SessionContext",
    "SessionDetails",
    "SessionError",
    "ShuttingDownError",
    "StreamingGRPCProxyTool",
    "Tensor",
    "Timestamp",
    "ToolBridgeClient",
    "ToolBridgeError",
    "ToolCommunicationError",
    "ToolExecutionError",
    "ToolMetrics",
    "ToolSpec",
    "Variable",
    "VariableAwareProxyTool",
    "VariableConstraints",
    "VariableError",
    "VariableInfo",
    "VariableNotFoundError",
    "VariableType",
    "VariableUpdate",
    "VariableWatch",
    "VersionConflictError",
    "build_proxy_tools",
    "call_with_retry",
    "create_grpc_channel",
    "decode_value",
    "encode_value",
    "error_from_info",
    "execute_batch",
    "health_check",
    "launch_host",
    "retry_delay",
    "start_host",
]
