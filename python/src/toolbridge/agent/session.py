"""SessionAgents: ReAct agents kept in a bridge's session, defined, rebuilt and run by any worker.

bridge = GRPCToolBridge("127.0.0.1:50051")
await bridge.initialize(session_id)
agents = SessionAgents(bridge)
agent_id = await agents.create_react_agent("question -> answer", ["search_docs", "calculate"])
run = await agents.run_agent(agent_id, question="...")      # in this or any other worker
await agents.store.list_runs(agent_id)

Like the bridge, every coroutine works from any event loop or thread, and each has a
``*_sync`` twin for sync programs (``agents.run_agent_sync(...)``,
``agents.store.list_runs_sync(...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dspy

from toolbridge.agent.model import AgentDefinition, AgentDefinitionError
from toolbridge.agent.records import AgentRun, AgentStore, ProgressEvent
from toolbridge.agent.runner import run_definition
from toolbridge.agent.store import BridgeAgentStore
from toolbridge.dspy import GRPCToolBridge


class SessionAgents:
    """The stored ReAct agents of the bridge's session, over the bridge's tools.

    Definitions and runs are kept in ``store``: the session's variables (``SessionVariableAgentStore``)
    unless another store is given. Every run is recorded there as it progresses.
    """

    def __init__(self, bridge: GRPCToolBridge, store: AgentStore | None = None) -> None:
        self.bridge = bridge
        #: Where agents and runs are kept (the session's variables unless another store was
        #: given), usable from any loop or thread, with ``*_sync`` reads.
        self.store = BridgeAgentStore(bridge, store)

    def build_react_agent(self, definition: AgentDefinition) -> dspy.ReAct:
        """A live ``dspy.ReAct`` from a definition, with the session's tools."""
        missing = [name for name in definition.tool_names if name not in self.bridge.specs]
        if missing:
            raise AgentDefinitionError(
                f"agent {definition.agent_id} uses tools the session does not have: {', '.join(missing)}; "
                f"its tools: {', '.join(sorted(self.bridge.specs)) or 'none'}"
            )
        return dspy.ReAct(
            definition.dspy_signature(),
            tools=self.bridge.get_dspy_tools(definition.tool_names),
            max_iters=definition.max_iters,
        )

    async def create_react_agent(
        self,
        signature: str | type[dspy.Signature],
        tool_names: Sequence[str] | None = None,
        max_iters: int = 5,
        *,
        instructions: str | None = None,
        agent_id: str | None = None,
    ) -> str:
        """Defines a ReAct agent over the session's tools and stores it in the session; returns its id.

        Any worker attached to the session can then run it (``run_agent(agent_id, ...)``).
        ``tool_names`` defaults to every tool the session has now; an unknown one raises
        ``ToolCallError`` (``ToolNotFound``) and nothing is stored.
        """
        names = list(tool_names) if tool_names is not None else list(self.bridge.specs)
        self.bridge.get_dspy_tools(names)
        definition = AgentDefinition.create(
            signature, names, max_iters, instructions=instructions, agent_id=agent_id
        )
        self.build_react_agent(definition)  # fails here rather than in another worker later
        await self.store.save_definition(definition)
        return definition.agent_id

    async def load_react_agent(self, agent_id: str) -> dspy.ReAct:
        """The stored agent, rebuilt as a ``dspy.ReAct`` to run (or optimize) as you like."""
        definition = await self.store.load_definition(agent_id)
        return self.build_react_agent(definition)

    async def run_agent(self, agent_id: str, /, **inputs: Any) -> AgentRun:
        """Runs a stored agent with DSPy's configured LM; the run and its steps are recorded in the session.

        Keyword arguments are the signature's input fields.
        """
        return await self.run_agent_with(agent_id, inputs)

    async def run_agent_with(
        self,
        agent_id: str,
        inputs: Mapping[str, Any],
        *,
        lm: dspy.BaseLM | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> AgentRun:
        """``run_agent`` with options: an LM for this run only, and a callback for live progress."""
        definition = await self.store.load_definition(agent_id)
        return await self.run_definition(definition, inputs, lm=lm, on_progress=on_progress)

    async def run_definition(
        self,
        definition: AgentDefinition,
        inputs: Mapping[str, Any],
        *,
        lm: dspy.BaseLM | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> AgentRun:
        """Runs an agent from its definition, stored or not; the run is recorded in the store.

        Raises ``AgentRunError`` (with the failed run) when the run fails, e.g. the LM call fails.
        """
        return await run_definition(
            self.build_react_agent(definition),
            definition,
            inputs,
            store=self.store,
            lm=lm,
            on_progress=on_progress,
        )

    # -- for sync programs

    def create_react_agent_sync(
        self,
        signature: str | type[dspy.Signature],
        tool_names: Sequence[str] | None = None,
        max_iters: int = 5,
        *,
        instructions: str | None = None,
        agent_id: str | None = None,
    ) -> str:
        """``create_react_agent`` for sync programs."""
        return self.bridge.run_sync(
            self.create_react_agent(
                signature, tool_names, max_iters, instructions=instructions, agent_id=agent_id
            )
        )

    def load_react_agent_sync(self, agent_id: str) -> dspy.ReAct:
        """``load_react_agent`` for sync programs."""
        return self.bridge.run_sync(self.load_react_agent(agent_id))

    def run_agent_sync(self, agent_id: str, /, **inputs: Any) -> AgentRun:
        """``run_agent`` for sync programs: the run goes on the bridge's background loop; this waits.

        ``dspy.context`` settings of the caller (the LM, callbacks) apply to the run.
        """
        return self.bridge.run_sync(self.run_agent(agent_id, **inputs))

    def run_agent_with_sync(
        self,
        agent_id: str,
        inputs: Mapping[str, Any],
        *,
        lm: dspy.BaseLM | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> AgentRun:
        """``run_agent_with`` for sync programs (``on_progress`` runs on the bridge's background thread)."""
        return self.bridge.run_sync(self.run_agent_with(agent_id, inputs, lm=lm, on_progress=on_progress))
