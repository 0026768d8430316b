"""The default AgentStore: agent definitions and run records as session variables on the host.

- a definition is the variable ``agent_<agent_id>`` (e.g. ``agent_react_1a2b3c4d``);
- a run is the variable ``run_<run_id>`` (e.g. ``run_react_1a2b3c4d_5e6f7a8b``), rewritten
  as the run progresses, so the TypeScript application can read or watch a trajectory
  while it grows (``SessionVariableAgentStore`` in ``@toolbridge/server`` reads it).

Each holds the serialized ``toolbridge.v1.AgentDefinition`` / ``AgentRun`` message
(``proto/toolbridge/v1/agents.proto``) as a bytes value, tagged with ``schema`` (the
message's name), ``kind`` and ``agent_id`` (runs also with ``status``), so they die with
the session like every variable, and any worker attached to the session can read them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final, TypeVar

from toolbridge.agent.model import AgentDefinition, AgentNotFoundError
from toolbridge.agent.records import AgentRun, AgentRunStep, AgentStore
from toolbridge.client.aio import ToolBridgeClient
from toolbridge.client.session_context import SessionContext
from toolbridge.core.errors import InvalidValueError
from toolbridge.core.variables import VariableNotFoundError
from toolbridge.dspy import GRPCToolBridge
from toolbridge.v1 import agents_pb2 as pb

log = logging.getLogger("toolbridge")

AGENT_DEFINITION_PREFIX: Final = "agent_"
AGENT_RUN_PREFIX: Final = "run_"
#: How much of each observation a run record keeps when the whole run is too large for a variable.
TRIMMED_OBSERVATION_CHARS: Final = 2000

T = TypeVar("T")

_DEFINITION_SCHEMA: Final = pb.AgentDefinition.DESCRIPTOR.full_name
_RUN_SCHEMA: Final = pb.AgentRun.DESCRIPTOR.full_name


def agent_definition_variable(agent_id: str) -> str:
    """The session variable that holds the definition of agent ``agent_id``."""
    return f"{AGENT_DEFINITION_PREFIX}{agent_id}"


def agent_run_variable(run_id: str) -> str:
    """The session variable that holds the record of run ``run_id``."""
    return f"{AGENT_RUN_PREFIX}{run_id}"


class SessionVariableAgentStore:
    """Keeps agents and runs in the session's variables (see the module docstring)."""

    def __init__(self, client: ToolBridgeClient) -> None:
        # Reads go to the host every time: definitions and runs are written by other
        # processes, and a store has no use for a cache's background watch.
        self.variables = SessionContext(client, cache=False)

    async def save_definition(self, definition: AgentDefinition) -> None:
        await self.variables.set_variable(
            agent_definition_variable(definition.agent_id),
            definition.to_bytes(),
            {"schema": _DEFINITION_SCHEMA, "kind": "agent", "agent_id": definition.agent_id},
        )

    async def load_definition(self, agent_id: str) -> AgentDefinition:
        try:
            value = await self.variables.get_variable(agent_definition_variable(agent_id))
        except VariableNotFoundError:
            raise AgentNotFoundError("agent", agent_id, self.variables.session_id) from None
        return AgentDefinition.from_bytes(value)

    async def list_definitions(self) -> list[AgentDefinition]:
        found = await self.variables.list_variables(AGENT_DEFINITION_PREFIX)
        return [
            AgentDefinition.from_bytes(v.value) for v in found if v.tags.get("schema") == _DEFINITION_SCHEMA
        ]

    async def record_run(self, run: AgentRun) -> None:
        name = agent_run_variable(run.run_id)
        tags = {"schema": _RUN_SCHEMA, "kind": "agent_run", "agent_id": run.agent_id, "status": run.status}
        try:
            await self.variables.set_variable(name, run.to_bytes(), tags)
        except InvalidValueError as error:
            if error.reason != "too_large":
                raise
            # Observations are what grows without bound (a tool returning a big document);
            # keep the run's shape and the start of each one rather than losing the record.
            log.warning(
                "run %s is too large for a session variable; storing trimmed observations", run.run_id
            )
            await self.variables.set_variable(name, _trimmed(run).to_bytes(), {**tags, "trimmed": "true"})

    async def load_run(self, run_id: str) -> AgentRun:
        try:
            value = await self.variables.get_variable(agent_run_variable(run_id))
        except VariableNotFoundError:
            raise AgentNotFoundError("run", run_id, self.variables.session_id) from None
        return AgentRun.from_bytes(value)

    async def list_runs(self, agent_id: str | None = None) -> list[AgentRun]:
        prefix = agent_run_variable(f"{agent_id}_") if agent_id is not None else AGENT_RUN_PREFIX
        found = await self.variables.list_variables(prefix)
        runs = [AgentRun.from_bytes(v.value) for v in found if v.tags.get("schema") == _RUN_SCHEMA]
        return sorted(runs, key=lambda run: run.started_at)


class BridgeAgentStore:
    """The agent store of a bridge's session, usable from any event loop or thread, and from sync code.

    What ``SessionAgents.store`` is. Over the session's variables (the default) each call
    uses the bridge's client for the loop it runs on; another ``AgentStore`` given to
    ``SessionAgents`` is called as it is. The ``*_sync`` reads run on the bridge's
    background loop and wait.
    """

    def __init__(self, bridge: GRPCToolBridge, store: AgentStore | None = None) -> None:
        self.bridge = bridge
        #: The store used as given (None: the session's variables, through the bridge).
        self.custom = store
        self._by_client: list[tuple[ToolBridgeClient, SessionVariableAgentStore]] = []

    async def _use(self, action: Callable[[AgentStore], Awaitable[T]]) -> T:
        if self.custom is not None:
            return await action(self.custom)
        return await self.bridge.run(lambda client: action(self._over(client)))

    def _over(self, client: ToolBridgeClient) -> SessionVariableAgentStore:
        # One store per client (the bridge has at most two): each keeps its SessionContext.
        for known, store in self._by_client:
            if known is client:
                return store
        store = SessionVariableAgentStore(client)
        self._by_client = [*self._by_client[-1:], (client, store)]
        return store

    async def save_definition(self, definition: AgentDefinition) -> None:
        await self._use(lambda store: store.save_definition(definition))

    async def load_definition(self, agent_id: str) -> AgentDefinition:
        return await self._use(lambda store: store.load_definition(agent_id))

    async def list_definitions(self) -> list[AgentDefinition]:
        return await self._use(lambda store: store.list_definitions())

    async def record_run(self, run: AgentRun) -> None:
        await self._use(lambda store: store.record_run(run))

    async def load_run(self, run_id: str) -> AgentRun:
        return await self._use(lambda store: store.load_run(run_id))

    async def list_runs(self, agent_id: str | None = None) -> list[AgentRun]:
        return await self._use(lambda store: store.list_runs(agent_id))

    def load_definition_sync(self, agent_id: str) -> AgentDefinition:
        """``load_definition`` for sync code."""
        return self.bridge.run_sync(self.load_definition(agent_id))

    def list_definitions_sync(self) -> list[AgentDefinition]:
        """``list_definitions`` for sync code."""
        return self.bridge.run_sync(self.list_definitions())

    def load_run_sync(self, run_id: str) -> AgentRun:
        """``load_run`` for sync code."""
        return self.bridge.run_sync(self.load_run(run_id))

    def list_runs_sync(self, agent_id: str | None = None) -> list[AgentRun]:
        """``list_runs`` for sync code."""
        return self.bridge.run_sync(self.list_runs(agent_id))


def _trimmed(run: AgentRun) -> AgentRun:
    def trim(step: AgentRunStep) -> AgentRunStep:
        text = step.observation if isinstance(step.observation, str) else repr(step.observation)
        if len(text) <= TRIMMED_OBSERVATION_CHARS:
            return step
        return replace(step, observation=f"{text[:TRIMMED_OBSERVATION_CHARS]}… ({len(text)} characters)")

    return replace(run, steps=tuple(trim(step) for step in run.steps))
