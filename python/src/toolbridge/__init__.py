"""toolbridge: call tools hosted by a TypeScript application, and share its session state, over gRPC.

What a user needs is exported here; the modules hold the rest (``toolbridge.transport`` the
wire, ``toolbridge.values`` the value codec, ``toolbridge.dspy`` and ``toolbridge.agent`` the
DSPy integration, which imports DSPy). ``@toolbridge.tool`` (``toolbridge.worker``) makes a
Python function a tool of a host's Python workers.
"""

from typing import TYPE_CHECKING, Any

from toolbridge.client import ToolBridgeClient
from toolbridge.errors import (
    ErrorType,
    InvalidValueError,
    SessionError,
    ToolBridgeError,
    ToolCallError,
    ToolCommunicationError,
    ToolExecutionError,
)
from toolbridge.health import health_check
from toolbridge.launcher import HostLaunchError, HostProcess, launch_host, start_host
from toolbridge.metrics import HostMetrics, ToolMetrics
from toolbridge.pool import ChannelPool
from toolbridge.proxy import AsyncGRPCProxyTool, StreamingGRPCProxyTool
from toolbridge.retry import (
    DEFAULT_BACKOFF,
    BackoffPolicy,
    RetryEvent,
    SessionRecreated,
    SessionRecreatedError,
)
from toolbridge.session_context import CachedSessionContext, SessionContext
from toolbridge.shutdown import GracefulShutdown, ShuttingDownError
from toolbridge.specs import NO_DEFAULT, ParameterSpec, Session, SessionDetails, ToolSpec
from toolbridge.sync_client import SyncToolBridgeClient
from toolbridge.transport import TlsConfig, create_grpc_channel
from toolbridge.values import Tensor, Timestamp
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

if TYPE_CHECKING:
    from toolbridge.worker import ToolContext, current_context, tool

__version__ = "0.1.0"

_WORKER_NAMES = frozenset({"tool", "ToolContext", "current_context"})


def __getattr__(name: str) -> Any:
    # @toolbridge.tool needs pydantic; importing it on first use keeps `import toolbridge` light.
    if name in _WORKER_NAMES:
        import toolbridge.worker

        return getattr(toolbridge.worker, name)
    raise AttributeError(f"module 'toolbridge' has no attribute {name!r}")


__all__ = [
    "DEFAULT_BACKOFF",
    "NO_DEFAULT",
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
    "SessionRecreated",
    "SessionRecreatedError",
    "ShuttingDownError",
    "StreamingGRPCProxyTool",
    "SyncToolBridgeClient",
    "Tensor",
    "Timestamp",
    "TlsConfig",
    "ToolBridgeClient",
    "ToolBridgeError",
    "ToolCallError",
    "ToolCommunicationError",
    "ToolContext",
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
    "create_grpc_channel",
    "current_context",
    "health_check",
    "launch_host",
    "start_host",
    "tool",
]
