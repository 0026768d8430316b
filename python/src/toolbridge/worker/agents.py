"""DSPy agents on a warm worker: DSPy is imported once, each run attaches to a host session.

The top layer of the worker process, above ``toolbridge.agent``; the service reaches it
through its ``AgentRunner`` protocol.

A run is what ``python -m toolbridge.agent`` does in a fresh interpreter, minus the start-up:
the worker connects to the host as an ordinary client, loads or defines the agent, runs it
and records the run in the session; its progress streams back as ``AgentRunEvent`` messages.

The worker only ever connects to the host it was started for (``--host-address``), whatever a
request names: anyone who reaches the worker's socket could otherwise have it present the
host's token to an address of their choosing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from toolbridge.core.errors import ErrorType
from toolbridge.core.values import decode_value, encode_value
from toolbridge.tracing import instrument_dspy
from toolbridge.transport.credentials import credentials_from_env
from toolbridge.v1 import worker_pb2
from toolbridge.worker.failures import CallFailure, failure_from

if TYPE_CHECKING:
    from toolbridge.agent import AgentDefinition, AgentRun, ProgressEvent, SessionAgents

LM_ENV = "TOOLBRIDGE_LM"
#: What a run needs; importing them takes seconds, which is what a warm worker saves.
AGENT_MODULES = (
    "dspy",
    "toolbridge.dspy",
    "toolbridge.agent",
    "toolbridge.agent.__main__",
)


def _import_agent_modules() -> None:
    for name in AGENT_MODULES:
        importlib.import_module(name)
    # With DSPy imported: its modules, LM calls and tools as spans, when the worker traces.
    instrument_dspy()


class AgentRuntime:
    """Imports the agent modules (in the background when preloaded) and runs agents on the
    sessions of ``host_address``, the host the worker was started for (None: no agents)."""

    def __init__(self, host_address: str | None = None) -> None:
        self.host_address = host_address
        self._loading: asyncio.Future[None] | None = None

    @property
    def ready(self) -> bool:
        return self._loading is not None and self._loading.done() and self._loading.exception() is None

    def preload(self) -> None:
        """Starts importing DSPy in a thread; the worker serves tools meanwhile."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(None, _import_agent_modules)

    async def _loaded(self) -> None:
        self.preload()
        assert self._loading is not None
        await asyncio.shield(self._loading)

    async def run(self, request: worker_pb2.RunAgentRequest) -> AsyncIterator[worker_pb2.AgentRunEvent]:
        """The run's progress events, ending with ``finished`` (its status, or why it never started)."""
        host = self.host_address
        if host is None or request.host_address not in ("", host):
            yield _not_run(_refusal(host))
            return
        try:
            await self._loaded()
        except Exception as error:
            failure = CallFailure(ErrorType.INTERNAL_ERROR, f"cannot import DSPy in the worker: {error}")
            yield _not_run(failure)
            return
        events: asyncio.Queue[worker_pb2.AgentRunEvent | None] = asyncio.Queue()
        task = asyncio.create_task(_run(request, host, events.put_nowait))
        task.add_done_callback(lambda _: events.put_nowait(None))
        try:
            while (event := await events.get()) is not None:
                yield event
        finally:
            if not task.done():
                task.cancel()  # the caller went away: the run is recorded as failed
                with contextlib.suppress(BaseException):
                    await task


def _refusal(host: str | None) -> CallFailure:
    """Why a run does not start: the worker has no host, or the request named another one."""
    if host is None:
        return CallFailure(
            ErrorType.VALIDATION_ERROR,
            "this worker was started without --host-address, so it runs no agents: start it with "
            "the address of the host whose sessions the runs use",
            {"field": "host_address"},
        )
    return CallFailure(
        ErrorType.VALIDATION_ERROR,
        "this worker attaches agent runs only to the host it was started for; the request named "
        "another address, which the worker does not dial: leave host_address empty",
        {"field": "host_address"},
    )


async def _run(request: worker_pb2.RunAgentRequest, host_address: str, emit: Any) -> None:
    from toolbridge.agent import AgentRunError, SessionAgents
    from toolbridge.dspy import GRPCToolBridge

    # The host hands its workers its own token (and TLS settings) in the environment.
    tls, token = credentials_from_env()
    bridge = GRPCToolBridge(host_address, tls=tls, token=token)
    agents = SessionAgents(bridge)
    try:
        try:
            lm = _choose_lm(request)
            await bridge.initialize(request.session_id)
            if bridge.session is not None and bridge.session.created:
                await bridge.cleanup()
                raise CallFailure(
                    ErrorType.SESSION_NOT_FOUND,
                    f"session {request.session_id} does not exist on {host_address}; create it first",
                )
            definition = await _definition(agents, request)
            inputs = {name: decode_value(value) for name, value in request.inputs.items()}
        except Exception as error:
            emit(_not_run(failure_from("agent", error)))
            return
        try:
            run = await agents.run_definition(
                definition, inputs, lm=lm, on_progress=lambda event: _emit_progress(emit, event)
            )
        except AgentRunError as error:
            run = error.run
        except Exception as error:  # the run never started (bad inputs, ...): nothing was recorded
            emit(_not_run(failure_from("agent", error)))
            return
        emit(_finished(run))
    finally:
        await bridge.close()


async def _definition(agents: SessionAgents, request: worker_pb2.RunAgentRequest) -> AgentDefinition:
    from toolbridge.agent import AgentDefinition

    if request.agent_id:
        return await agents.store.load_definition(request.agent_id)
    bridge = agents.bridge
    names = list(request.tools) or list(bridge.specs)
    definition = AgentDefinition.create(
        request.signature or "question -> answer",
        names,
        request.max_iters or 5,
        instructions=request.instructions or None,
    )
    bridge.get_dspy_tools(definition.tool_names)
    agents.build_react_agent(definition)
    # Stored before it runs, so the run can be repeated by id from any worker.
    await agents.store.save_definition(definition)
    return definition


def _choose_lm(request: worker_pb2.RunAgentRequest) -> Any:
    from toolbridge.agent.lm import LMChoiceError, choose_lm

    model = request.lm or os.environ.get(LM_ENV)
    if not (request.lm_factory or model or request.script):
        raise CallFailure(
            ErrorType.VALIDATION_ERROR,
            f"no LM: set {LM_ENV} in the worker's environment, or pass lm (a DSPy model string), "
            "lmFactory (module:function) or script",
            {"field": "lm"},
        )
    try:
        return choose_lm(model=model, factory=request.lm_factory or None, script=request.script or None)
    except LMChoiceError as error:
        field = "lm_factory" if request.lm_factory else "script"
        raise CallFailure(ErrorType.VALIDATION_ERROR, str(error), {"field": field}) from None


def _value(value: Any) -> Any:
    try:
        return encode_value(value)
    except Exception:  # progress shows what the codec cannot carry as text
        return encode_value(str(value))


def _emit_progress(emit: Any, event: ProgressEvent) -> None:
    step = max(event.step, 0)
    if event.kind == "run_started" and event.run is not None:
        started = worker_pb2.AgentRunStarted(agent_id=event.run.agent_id, lm=event.run.lm)
        emit(worker_pb2.AgentRunEvent(run_id=event.run_id, step=step, started=started))
    elif event.kind == "thought":
        emit(worker_pb2.AgentRunEvent(run_id=event.run_id, step=step, thought=event.text))
    elif event.kind == "tool_call":
        call = worker_pb2.AgentToolCall(
            tool_name=event.tool_name, tool_args={k: _value(v) for k, v in event.tool_args.items()}
        )
        emit(worker_pb2.AgentRunEvent(run_id=event.run_id, step=step, tool_call=call))
    elif event.kind == "observation":
        observation = worker_pb2.AgentObservation(
            tool_name=event.tool_name,
            observation=_value(event.observation),
            error_type=event.error_type or "",
        )
        emit(worker_pb2.AgentRunEvent(run_id=event.run_id, step=step, observation=observation))


def _finished(run: AgentRun) -> worker_pb2.AgentRunEvent:
    finished = worker_pb2.AgentRunFinished(
        agent_id=run.agent_id,
        status=run.status,
        outputs={name: _value(value) for name, value in run.outputs.items()},
        reason=run.error,
    )
    return worker_pb2.AgentRunEvent(run_id=run.run_id, step=len(run.steps), finished=finished)


def _not_run(failure: CallFailure) -> worker_pb2.AgentRunEvent:
    finished = worker_pb2.AgentRunFinished(status="failed", reason=failure.message, error=failure.to_pb())
    return worker_pb2.AgentRunEvent(finished=finished)
