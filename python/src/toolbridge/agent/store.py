"""The default AgentStore: agent definitions and run records as session variables on the host.

- a definition is the variable ``agent_<agent_id>`` (e.g. ``agent_react_1a2b3c4d``);
- a run is the variable ``run_<run_id>`` (e.g. ``run_react_1a2b3c4d_5e6f7a8b``), rewritten
  as the run progresses, so the TypeScript application can read or watch a trajectory
  while it grows (``host.variables(sessionId).get("run_...")``).

Both are plain maps (``AgentDefinition.to_value()``, ``AgentRun.to_value()``) tagged with
``kind`` and ``agent_id`` (runs also with ``status``), so they die with the session like
every variable, and any worker attached to the session can read them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from toolbridge.agent.model import AgentDefinition, AgentNotFoundError, AgentRun, TrajectoryStep
from toolbridge.errors import InvalidValueError
from toolbridge.session_context import SessionContext
from toolbridge.variables import VariableNotFoundError

if TYPE_CHECKING:
    from toolbridge.client import ToolBridgeClient

log = logging.getLogger("toolbridge")

DEFINITION_PREFIX: Final = "agent_"
RUN_PREFIX: Final = "run_"
#: How much of each observation a run record keeps when the whole run is too large for a variable.
TRIMMED_OBSERVATION_CHARS: Final = 2000


def definition_variable(agent_id: str) -> str:
    return f"{DEFINITION_PREFIX}{agent_id}"


def run_variable(run_id: str) -> str:
    return f"{RUN_PREFIX}{run_id}"


class SessionVariableAgentStore:
    """Keeps agents and runs in the session's variables (see the module docstring)."""

    def __init__(self, client: ToolBridgeClient) -> None:
        # Reads go to the host every time: definitions and runs are written by other
        # processes, and a store has no use for a cache's background watch.
        self.variables = SessionContext(client, cache=False)

    async def save_definition(self, definition: AgentDefinition) -> None:
        await self.variables.set_variable(
            definition_variable(definition.agent_id),
            definition.to_value(),
            {"kind": "agent", "agent_id": definition.agent_id},
        )

    async def load_definition(self, agent_id: str) -> AgentDefinition:
        try:
            value = await self.variables.get_variable(definition_variable(agent_id))
        except VariableNotFoundError:
            raise AgentNotFoundError("agent", agent_id, self.variables.session_id) from None
        return AgentDefinition.from_value(value)

    async def list_definitions(self) -> list[AgentDefinition]:
        found = await self.variables.list_variables(DEFINITION_PREFIX)
        return [AgentDefinition.from_value(v.value) for v in found if v.tags.get("kind") == "agent"]

    async def record_run(self, run: AgentRun) -> None:
        name = run_variable(run.run_id)
        tags = {"kind": "agent_run", "agent_id": run.agent_id, "status": run.status}
        try:
            await self.variables.set_variable(name, run.to_value(), tags)
        except InvalidValueError as error:
            if error.reason != "too_large":
                raise
            # Observations are what grows without bound (a tool returning a big document);
            # keep the run's shape and the start of each one rather than losing the record.
            log.warning(
                "run %s is too large for a session variable; storing trimmed observations", run.run_id
            )
            await self.variables.set_variable(name, _trimmed(run).to_value(), {**tags, "trimmed": "true"})

    async def load_run(self, run_id: str) -> AgentRun:
        try:
            value = await self.variables.get_variable(run_variable(run_id))
        except VariableNotFoundError:
            raise AgentNotFoundError("run", run_id, self.variables.session_id) from None
        return AgentRun.from_value(value)

    async def list_runs(self, agent_id: str | None = None) -> list[AgentRun]:
        prefix = run_variable(f"{agent_id}_") if agent_id is not None else RUN_PREFIX
        found = await self.variables.list_variables(prefix)
        runs = [AgentRun.from_value(v.value) for v in found if v.tags.get("kind") == "agent_run"]
        return sorted(runs, key=lambda run: run.started_at)


def _trimmed(run: AgentRun) -> AgentRun:
    def trim(step: TrajectoryStep) -> TrajectoryStep:
        text = step.observation if isinstance(step.observation, str) else repr(step.observation)
        if len(text) <= TRIMMED_OBSERVATION_CHARS:
            return step
        return replace(step, observation=f"{text[:TRIMMED_OBSERVATION_CHARS]}… ({len(text)} characters)")

    return replace(run, steps=tuple(trim(step) for step in run.steps))
