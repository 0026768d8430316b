"""toolbridge: call tools hosted by a TypeScript application, and share its session state, over gRPC."""

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
from toolbridge.proxy import AsyncGRPCProxyTool, StreamingGRPCProxyTool, build_proxy_tools
from toolbridge.specs import NO_DEFAULT, ParameterSpec, Session, SessionDetails, ToolSpec
from toolbridge.values import Tensor, Timestamp, decode_value, encode_value

__version__ = "0.1.0"

__all__ = [
    "GRPC_CONFIG",
    "NO_DEFAULT",
    "TOOL_BRIDGE_CONFIG",
    "AsyncGRPCProxyTool",
    "ErrorType",
    "HostLaunchError",
    "HostProcess",
    "InvalidValueError",
    "ParameterSpec",
    "Session",
    "SessionDetails",
    "SessionError",
    "StreamingGRPCProxyTool",
    "Tensor",
    "Timestamp",
    "ToolBridgeClient",
    "ToolBridgeError",
    "ToolCommunicationError",
    "ToolExecutionError",
    "ToolSpec",
    "build_proxy_tools",
    "create_grpc_channel",
    "decode_value",
    "encode_value",
    "error_from_info",
    "health_check",
    "launch_host",
    "start_host",
]
