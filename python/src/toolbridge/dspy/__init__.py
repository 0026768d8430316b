"""DSPy integration: the host's tools as ``dspy.Tool`` objects, usable from sync and async DSPy code.

    from toolbridge.dspy import GRPCToolBridge

    bridge = GRPCToolBridge("127.0.0.1:50051")
    await bridge.initialize(session_id)
    agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools())

Importing this package imports ``dspy``; ``import toolbridge`` alone does not. ``schema`` turns
a tool's JSON Schema into what DSPy shows the LM, ``tool`` is the ``dspy.Tool`` adapter,
``clients`` decides which client serves a call from which loop or thread, ``bridge`` connects
them to a host session. Stored ReAct agents are ``toolbridge.agent``'s.
"""

from toolbridge.dspy.bridge import GRPCToolBridge
from toolbridge.dspy.schema import (
    ResultShape,
    SchemaResolver,
    ToolArguments,
    dspy_tool_args,
    json_schema_type,
)
from toolbridge.dspy.tool import (
    INVALID_ARGUMENTS,
    BridgeLost,
    BridgeTool,
    DetachedRunner,
    ToolErrorObservation,
    ToolRunner,
)

__all__ = [
    "INVALID_ARGUMENTS",
    "BridgeLost",
    "BridgeTool",
    "DetachedRunner",
    "GRPCToolBridge",
    "ResultShape",
    "SchemaResolver",
    "ToolArguments",
    "ToolErrorObservation",
    "ToolRunner",
    "dspy_tool_args",
    "json_schema_type",
]
