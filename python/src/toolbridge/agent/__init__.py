"""Stored ReAct agents: definitions and run records kept in the session, runnable by any worker.

``python -m toolbridge.agent --help`` runs one from the command line (the TypeScript host uses it).
"""

from toolbridge.agent.model import (
    AgentDefinition,
    AgentDefinitionError,
    AgentError,
    AgentNotFoundError,
    AgentRun,
    AgentRunError,
    AgentStore,
    ProgressEvent,
    TrajectoryStep,
)
from toolbridge.agent.session import SessionAgents

__all__ = [
    "AgentDefinition",
    "AgentDefinitionError",
    "AgentError",
    "AgentNotFoundError",
    "AgentRun",
    "AgentRunError",
    "AgentStore",
    "ProgressEvent",
    "SessionAgents",
    "TrajectoryStep",
]
