"""Stored ReAct agents: definitions and run records kept in the session, runnable by any worker.

``python -m toolbridge.agent --help`` runs one from the command line (the TypeScript host uses it).
"""

from toolbridge.agent.lm import LMChoiceError, lm_from_factory
from toolbridge.agent.model import AgentDefinition, AgentDefinitionError, AgentError, AgentNotFoundError
from toolbridge.agent.records import (
    AgentRun,
    AgentRunError,
    AgentRunStatus,
    AgentRunStep,
    AgentStore,
    ProgressEvent,
)
from toolbridge.agent.session import SessionAgents
from toolbridge.agent.store import (
    AGENT_DEFINITION_PREFIX,
    AGENT_RUN_PREFIX,
    BridgeAgentStore,
    SessionVariableAgentStore,
    agent_definition_variable,
    agent_run_variable,
)

__all__ = [
    "AGENT_DEFINITION_PREFIX",
    "AGENT_RUN_PREFIX",
    "AgentDefinition",
    "AgentDefinitionError",
    "AgentError",
    "AgentNotFoundError",
    "AgentRun",
    "AgentRunError",
    "AgentRunStatus",
    "AgentRunStep",
    "AgentStore",
    "BridgeAgentStore",
    "LMChoiceError",
    "ProgressEvent",
    "SessionAgents",
    "SessionVariableAgentStore",
    "agent_definition_variable",
    "agent_run_variable",
    "lm_from_factory",
]
