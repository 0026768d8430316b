"""Runs a stored agent: rebuild it from its definition, run it, and record the run as it goes.

The run record is written when the run starts, after every tool call (so the TypeScript side
can follow a run in progress), and when it ends; ``on_progress`` gets the same steps live.
A run ends as failed, with a reason a person can act on, when the LM call fails, when a tool
finds the session gone or the host unreachable (``BridgeLost``), and when it is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import dspy
from dspy.utils.callback import BaseCallback

from toolbridge.agent.model import AgentDefinition, AgentError
from toolbridge.agent.records import (
    AgentRun,
    AgentRunError,
    AgentRunStep,
    AgentStore,
    ProgressEvent,
    storable,
)
from toolbridge.core import tracing
from toolbridge.core.errors import ErrorType, ToolBridgeError
from toolbridge.dspy import BridgeLost, ToolErrorObservation

logger = logging.getLogger(__name__)

T = TypeVar("T")

_STEP_KEY = re.compile(r"thought_(\d+)")


def lm_name(lm: Any) -> str:
    return str(getattr(lm, "model", None) or type(lm).__name__)


def steps_from_trajectory(
    trajectory: Mapping[str, Any], errors: Mapping[int, str] | None = None
) -> list[AgentRunStep]:
    """The steps of a ``dspy.ReAct`` trajectory (``thought_i``, ``tool_name_i``, ``tool_args_i``, ...).

    ``errors`` gives the error type of steps whose tool raised (ReAct then stores its own
    "Execution error in ..." text as the observation).
    """
    indices = sorted(int(m.group(1)) for key in trajectory if (m := _STEP_KEY.fullmatch(key)))
    steps = []
    for i in indices:
        observation = trajectory.get(f"observation_{i}")
        error_type = observation.type if isinstance(observation, ToolErrorObservation) else None
        if error_type is None and errors is not None:
            error_type = errors.get(i)
        steps.append(
            AgentRunStep(
                thought=str(trajectory.get(f"thought_{i}", "")),
                tool_name=str(trajectory.get(f"tool_name_{i}", "")),
                tool_args=dict(trajectory.get(f"tool_args_{i}") or {}),
                observation=observation,
                error_type=error_type,
            )
        )
    return steps


class _RunRecorder(BaseCallback):  # type: ignore[misc]  # dspy is untyped
    """Follows one ReAct run through DSPy's callbacks: thoughts, tool calls and observations, live."""

    def __init__(self, agent: dspy.ReAct, run: AgentRun, emit: Callable[[ProgressEvent], None]) -> None:
        self.agent = agent
        self.run = run
        self.emit = emit
        self.steps: list[AgentRunStep] = []
        #: Error types of steps whose tool raised instead of returning an observation.
        self.errors: dict[int, str] = {}
        self._thought = ""
        #: When the current step began: its thought was asked of the LM.
        self._step_started: datetime | None = None
        self._tool_name = ""
        self._tool_args: dict[str, Any] = {}
        self._react_calls: set[str] = set()
        self._tool_calls: set[str] = set()
        #: The execute_tool span of each step's tool call in progress, when traced.
        self._spans: dict[str, tracing.OpenSpan] = {}
        #: Set after each step and at the end, for the task that writes progress to the store.
        self.changed = asyncio.Event()
        self.done = False

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if instance is self.agent.react:
            self._react_calls.add(call_id)
            self._step_started = datetime.now(UTC)

    def on_module_end(self, call_id: str, outputs: Any | None, exception: Exception | None = None) -> None:
        if call_id not in self._react_calls:
            return
        self._react_calls.discard(call_id)
        if outputs is None:
            return
        self._thought = str(getattr(outputs, "next_thought", ""))
        self.emit(ProgressEvent("thought", self.run.run_id, len(self.steps), text=self._thought))

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if not isinstance(instance, dspy.Tool) or instance.name not in self.agent.tools:
            return
        self._tool_calls.add(call_id)
        self._tool_name = str(instance.name)
        self._tool_args = dict(inputs.get("kwargs") or {})
        name, args = self._tool_name, self._tool_args
        step = len(self.steps)
        traced = tracing.OpenSpan.start(
            f"execute_tool {name}", step_attributes(self.run.run_id, step, name, self._thought, args)
        )
        if traced is not None:
            self._spans[call_id] = traced
        self.emit(ProgressEvent("tool_call", self.run.run_id, step, tool_name=name, tool_args=args))

    def on_tool_end(self, call_id: str, outputs: Any | None, exception: Exception | None = None) -> None:
        if call_id not in self._tool_calls:
            return
        self._tool_calls.discard(call_id)
        step = len(self.steps)
        error_type = None
        observation = outputs
        if isinstance(exception, BridgeLost | asyncio.CancelledError):
            # The run ends here; the step keeps why.
            error_type = exception.type if isinstance(exception, BridgeLost) else ErrorType.CANCELLED
            self.errors[step] = error_type
            observation = str(exception) or "the call was cancelled"
        elif exception is not None:
            error_type = (
                exception.type if isinstance(exception, ToolBridgeError) else ErrorType.INTERNAL_ERROR
            )
            self.errors[step] = error_type
            observation = f"Execution error in {self._tool_name}: {exception}"
        elif isinstance(outputs, ToolErrorObservation):
            error_type = outputs.type
        traced = self._spans.pop(call_id, None)
        if traced is not None:
            _end_step(traced, error_type, observation)
        record = AgentRunStep(
            self._thought,
            self._tool_name,
            self._tool_args,
            observation,
            error_type,
            started_at=self._step_started,
            finished_at=datetime.now(UTC),
        )
        self.steps.append(record)
        self.emit(
            ProgressEvent(
                "observation",
                self.run.run_id,
                step,
                tool_name=self._tool_name,
                observation=storable(observation),
                error_type=error_type,
            )
        )
        self.changed.set()


async def run_definition(
    agent: dspy.ReAct,
    definition: AgentDefinition,
    inputs: Mapping[str, Any],
    *,
    store: AgentStore | None,
    lm: dspy.BaseLM | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> AgentRun:
    """Runs ``agent`` (built from ``definition`` over a bridge's tools); the run is recorded in ``store``.

    Raises ``AgentRunError`` (with the failed run) when the run fails; a cancelled run is
    recorded as failed and the ``CancelledError`` goes on.
    """
    agent_id = definition.agent_id
    missing = [name for name in agent.signature.input_fields if name not in inputs]
    unknown = [name for name in inputs if name not in agent.signature.input_fields]
    if missing or unknown:
        raise AgentError(
            f"agent {agent_id} takes inputs {', '.join(agent.signature.input_fields)}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
            ErrorType.VALIDATION_ERROR,
        )
    chosen_lm = lm or dspy.settings.lm
    if chosen_lm is None:
        raise AgentError(
            "no language model: dspy.configure(lm=dspy.LM('openai/gpt-4o-mini')), "
            "or pass lm= to run_agent_with",
            ErrorType.VALIDATION_ERROR,
        )

    def emit(event: ProgressEvent) -> None:
        if on_progress is not None:
            try:
                on_progress(event)
            except Exception:  # a broken progress printer must not fail the run
                logger.exception("on_progress raised")

    async def save(record: AgentRun) -> None:
        if store is not None:
            await store.record_run(record)

    run = AgentRun.start(agent_id, inputs, lm=lm_name(chosen_lm))
    # The run's span: each step's tool call, DSPy's own spans and the host's beneath it.
    with tracing.span("invoke_agent ReAct", agent_attributes(definition, run)) as traced:
        return await _run_recorded(agent, inputs, run, chosen_lm, save, emit, traced)


async def _run_recorded(
    agent: dspy.ReAct,
    inputs: Mapping[str, Any],
    run: AgentRun,
    chosen_lm: Any,
    save: Callable[[AgentRun], Awaitable[None]],
    emit: Callable[[ProgressEvent], None],
    traced: Any,
) -> AgentRun:
    """Runs ``agent`` and records ``run`` as it goes: started, each step, and how it ended."""
    await save(run)
    emit(ProgressEvent("run_started", run.run_id, run=run))
    recorder = _RunRecorder(agent, run, emit)
    writer = asyncio.create_task(_write_progress(recorder, save))
    with dspy.context(lm=chosen_lm, callbacks=[*dspy.settings.callbacks, recorder]):
        running = asyncio.ensure_future(agent.acall(**inputs))
    try:
        prediction = await _outcome(running)
    except BaseException as error:
        await _stop(writer, recorder)
        failed = run.failed(error, recorder.steps, reason=failure_reason(error, len(recorder.steps)))
        try:
            await save(failed)
        except Exception as unsaved:  # the run's own error is the one to report
            logger.warning("could not record the failure of run %s: %s", run.run_id, unsaved)
        emit(ProgressEvent("run_finished", run.run_id, run=failed))
        tracing.fail(traced, _error_type(error), failure_reason(error, len(recorder.steps)))
        if isinstance(error, BridgeLost):
            raise AgentRunError(failed, error.error) from error
        if isinstance(error, Exception):
            raise AgentRunError(failed, error) from error
        raise
    await _stop(writer, recorder)
    steps = _timed(steps_from_trajectory(prediction.trajectory, recorder.errors), recorder.steps)
    if steps and len(steps) < len(recorder.steps):
        # ReAct dropped the oldest steps to fit the context window; the record keeps them.
        steps = recorder.steps[: len(recorder.steps) - len(steps)] + steps
    outputs = {name: prediction.get(name) for name in agent.signature.output_fields}
    finished = run.succeeded(steps, outputs, str(prediction.get("reasoning") or ""))
    await save(finished)
    emit(ProgressEvent("run_finished", run.run_id, run=finished))
    return finished


def agent_attributes(definition: AgentDefinition, run: AgentRun) -> dict[str, Any]:
    """The attributes of a run's invoke_agent span (docs/tracing.md)."""
    return {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "ReAct",
        "gen_ai.agent.id": definition.agent_id,
        "gen_ai.agent.description": definition.signature,
        "gen_ai.request.model": run.lm,
        "toolbridge.agent.run_id": run.run_id,
    }


def step_attributes(
    run_id: str, step: int, tool: str, thought: str, args: Mapping[str, Any]
) -> dict[str, Any]:
    """The attributes of a step's execute_tool span; its thought and arguments only with content on."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.call.id": f"{run_id}/{step + 1}",
        "toolbridge.agent.run_id": run_id,
        "toolbridge.agent.step": step + 1,
    }
    if tracing.records_content():
        attributes["toolbridge.agent.thought"] = thought
        attributes["gen_ai.tool.call.arguments"] = json.dumps(storable(dict(args)), default=str)
    return attributes


def _end_step(traced: tracing.OpenSpan, error_type: str | None, observation: Any) -> None:
    attributes = {}
    if tracing.records_content():
        attributes["gen_ai.tool.call.result"] = json.dumps(storable(observation), default=str)
    if error_type is not None:
        tracing.fail(traced.span, error_type, str(observation)[:500])
    traced.end(attributes)


def _error_type(error: BaseException) -> str:
    if isinstance(error, BridgeLost):
        return error.type
    if isinstance(error, asyncio.CancelledError):
        return ErrorType.CANCELLED
    return error.type if isinstance(error, ToolBridgeError) else type(error).__name__


def _timed(steps: list[AgentRunStep], recorded: list[AgentRunStep]) -> list[AgentRunStep]:
    """``steps`` (from the trajectory, which holds the latest steps) with the times the recorder saw."""
    if len(steps) > len(recorded):
        return steps
    seen = recorded[len(recorded) - len(steps) :]
    return [
        replace(step, started_at=t.started_at, finished_at=t.finished_at)
        for step, t in zip(steps, seen, strict=True)
    ]


def failure_reason(error: BaseException, steps: int) -> str:
    """What a failed run's record says about why it ended (``steps``: how many it recorded)."""
    recorded = f"{steps} step{'' if steps == 1 else 's'} recorded"
    if isinstance(error, BridgeLost):
        lost = error.error
        return (
            f"{lost.type}: the run stopped because tool '{error.tool_name}' cannot reach its session "
            f"({recorded}): {lost}"
        )
    if isinstance(error, asyncio.CancelledError):
        why = str(error) or "the task running it was cancelled"
        return f"{ErrorType.CANCELLED}: the run was stopped before it finished: {why} ({recorded})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def _outcome(running: asyncio.Future[T]) -> T:
    """The result of ``running``; cancelling the caller cancels it with the same message, once it stopped.

    The agent runs in a task of its own because a cancellation's message (``task.cancel("stopped by
    SIGTERM")``) would not survive the gRPC call it interrupts; here it arrives intact.
    """
    try:
        await asyncio.wait({running})
    except asyncio.CancelledError as cancelled:
        running.cancel(str(cancelled) or None)
        await asyncio.wait({running})  # its last step (the interrupted call) is recorded by then
        raise
    return running.result()


async def _write_progress(recorder: _RunRecorder, save: Callable[[AgentRun], Awaitable[None]]) -> None:
    """Writes the run with its steps so far after each tool call; a slow store sees only the latest.

    It is never cancelled mid-write: a progress write still in flight could otherwise land on
    the host after the final record and overwrite it.
    """
    written = 0
    while True:
        await recorder.changed.wait()
        recorder.changed.clear()
        if len(recorder.steps) > written:
            written = len(recorder.steps)
            try:
                await save(recorder.run.with_steps(recorder.steps))
            except ToolBridgeError as error:  # e.g. the session is gone: its message says it all
                logger.warning("could not record the progress of run %s: %s", recorder.run.run_id, error)
            except Exception:  # the final write reports problems; progress is best effort
                logger.warning("could not record the progress of run %s", recorder.run.run_id, exc_info=True)
        if recorder.done:
            return


async def _stop(writer: asyncio.Task[None], recorder: _RunRecorder) -> None:
    recorder.done = True
    recorder.changed.set()
    await writer
