"""toolbridge: call tools hosted by a TypeScript application, and share its session state, over gRPC.

What a user needs is exported here (``__all__``); the subpackages hold the rest, by layer
(docs/python-package.md): ``toolbridge.core`` (errors, the value codec, specs, variables as
data, settings), ``toolbridge.transport`` (the wire), ``toolbridge.features`` (batches,
retries, variables, metrics, health, the channel pool), ``toolbridge.client`` (the clients,
session contexts, proxies), ``toolbridge.dspy`` and ``toolbridge.agent`` (DSPy, which they
import), ``toolbridge.worker`` (``@toolbridge.tool``: a Python function as a tool of a host's
Python workers).

Each name is imported on first use (PEP 562), so that importing one part (``import
toolbridge.worker`` in a worker process) loads no client, transport or gRPC it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolbridge.client.aio import ToolBridgeClient
    from toolbridge.client.blocking import SyncToolBridgeClient
    from toolbridge.client.proxy import (
        AsyncGRPCProxyTool,
        StreamingGRPCProxyTool,
        SyncGRPCProxyTool,
        SyncStreamingGRPCProxyTool,
    )
    from toolbridge.client.session_context import CachedSessionContext, SessionContext
    from toolbridge.client.variable_proxy import ContextProxyTool, VariableAwareProxyTool
    from toolbridge.core.config import GRPC_CONFIG, TOOL_BRIDGE_CONFIG
    from toolbridge.core.errors import (
        ErrorType,
        InvalidValueError,
        SessionError,
        ToolBridgeError,
        ToolCallError,
        ToolCommunicationError,
        ToolExecutionError,
    )
    from toolbridge.core.specs import NO_DEFAULT, ParameterSpec, Session, SessionDetails, ToolSpec
    from toolbridge.core.values import Tensor, Timestamp
    from toolbridge.core.variables import (
        VARIABLE_TYPES,
        ConstraintViolationError,
        Variable,
        VariableConstraints,
        VariableError,
        VariableInfo,
        VariableNotFoundError,
        VariableType,
        VariableUpdate,
        VersionConflictError,
    )
    from toolbridge.features.health import health_check
    from toolbridge.features.metrics import HostMetrics, ToolMetrics
    from toolbridge.features.pool import ChannelPool, SyncChannelPool
    from toolbridge.features.retry import (
        DEFAULT_BACKOFF,
        BackoffPolicy,
        RetryEvent,
        SessionRecreated,
        SessionRecreatedError,
    )
    from toolbridge.features.shutdown import GracefulShutdown, ShuttingDownError
    from toolbridge.features.watch import VariableWatch
    from toolbridge.launch.host import HostLaunchError, HostProcess, launch_host, start_host
    from toolbridge.transport import TlsConfig, create_grpc_channel
    from toolbridge.worker import ToolContext, current_context, tool

__version__ = "0.1.0"

#: The module of each exported name.
_EXPORTS: dict[str, str] = {
    "ToolBridgeClient": "toolbridge.client.aio",
    "SyncToolBridgeClient": "toolbridge.client.blocking",
    "AsyncGRPCProxyTool": "toolbridge.client.proxy",
    "StreamingGRPCProxyTool": "toolbridge.client.proxy",
    "SyncGRPCProxyTool": "toolbridge.client.proxy",
    "SyncStreamingGRPCProxyTool": "toolbridge.client.proxy",
    "CachedSessionContext": "toolbridge.client.session_context",
    "SessionContext": "toolbridge.client.session_context",
    "ContextProxyTool": "toolbridge.client.variable_proxy",
    "VariableAwareProxyTool": "toolbridge.client.variable_proxy",
    "GRPC_CONFIG": "toolbridge.core.config",
    "TOOL_BRIDGE_CONFIG": "toolbridge.core.config",
    "ErrorType": "toolbridge.core.errors",
    "InvalidValueError": "toolbridge.core.errors",
    "SessionError": "toolbridge.core.errors",
    "ToolBridgeError": "toolbridge.core.errors",
    "ToolCallError": "toolbridge.core.errors",
    "ToolCommunicationError": "toolbridge.core.errors",
    "ToolExecutionError": "toolbridge.core.errors",
    "NO_DEFAULT": "toolbridge.core.specs",
    "ParameterSpec": "toolbridge.core.specs",
    "Session": "toolbridge.core.specs",
    "SessionDetails": "toolbridge.core.specs",
    "ToolSpec": "toolbridge.core.specs",
    "Tensor": "toolbridge.core.values",
    "Timestamp": "toolbridge.core.values",
    "ConstraintViolationError": "toolbridge.core.variables",
    "VARIABLE_TYPES": "toolbridge.core.variables",
    "Variable": "toolbridge.core.variables",
    "VariableConstraints": "toolbridge.core.variables",
    "VariableError": "toolbridge.core.variables",
    "VariableInfo": "toolbridge.core.variables",
    "VariableNotFoundError": "toolbridge.core.variables",
    "VariableType": "toolbridge.core.variables",
    "VariableUpdate": "toolbridge.core.variables",
    "VersionConflictError": "toolbridge.core.variables",
    "health_check": "toolbridge.features.health",
    "HostMetrics": "toolbridge.features.metrics",
    "ToolMetrics": "toolbridge.features.metrics",
    "ChannelPool": "toolbridge.features.pool",
    "SyncChannelPool": "toolbridge.features.pool",
    "BackoffPolicy": "toolbridge.features.retry",
    "DEFAULT_BACKOFF": "toolbridge.features.retry",
    "RetryEvent": "toolbridge.features.retry",
    "SessionRecreated": "toolbridge.features.retry",
    "SessionRecreatedError": "toolbridge.features.retry",
    "GracefulShutdown": "toolbridge.features.shutdown",
    "ShuttingDownError": "toolbridge.features.shutdown",
    "VariableWatch": "toolbridge.features.watch",
    "HostLaunchError": "toolbridge.launch.host",
    "HostProcess": "toolbridge.launch.host",
    "launch_host": "toolbridge.launch.host",
    "start_host": "toolbridge.launch.host",
    "TlsConfig": "toolbridge.transport",
    "create_grpc_channel": "toolbridge.transport",
    "ToolContext": "toolbridge.worker",
    "current_context": "toolbridge.worker",
    "tool": "toolbridge.worker",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'toolbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
    "SessionRecreated",
    "SessionRecreatedError",
    "ShuttingDownError",
    "StreamingGRPCProxyTool",
    "SyncChannelPool",
    "SyncGRPCProxyTool",
    "SyncStreamingGRPCProxyTool",
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
