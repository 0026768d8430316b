"""The ToolBridgeWorker service (proto/toolbridge/v1/worker.proto) over a worker's tools."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, Protocol, TypeVar

import grpc

from toolbridge.errors import ErrorType
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import worker_pb2, worker_pb2_grpc
from toolbridge.values import decode_value, encode_value
from toolbridge.worker.context import ToolContext
from toolbridge.worker.failures import CallFailure, failure_from, stacktrace_of
from toolbridge.worker.tools import WorkerTool
from toolbridge.worker.watchdog import Watchdog, rss_bytes

T = TypeVar("T")


class AgentRunner(Protocol):
    """What runs agents for RunAgent (``toolbridge.worker.agents.AgentRuntime``, above this layer)."""

    @property
    def ready(self) -> bool: ...

    def run(self, request: worker_pb2.RunAgentRequest) -> AsyncIterator[worker_pb2.AgentRunEvent]: ...


class WorkerService(worker_pb2_grpc.ToolBridgeWorkerServicer):
    """Serves ``tools`` (by name) and agent runs; counts what is in flight for the heartbeat."""

    def __init__(
        self,
        tools: Mapping[str, WorkerTool],
        modules: list[str],
        watchdog: Watchdog,
        agents: AgentRunner,
        *,
        expose_stacktraces: bool = False,
    ) -> None:
        self.tools = dict(tools)
        self.modules = modules
        self.watchdog = watchdog
        self.agents = agents
        self.expose_stacktraces = expose_stacktraces
        self.in_flight = 0
        self.requests_total = 0

    # -- tools

    async def DescribeTools(
        self, request: worker_pb2.DescribeToolsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> worker_pb2.DescribeToolsResponse:
        return worker_pb2.DescribeToolsResponse(
            tools=[tool.spec for tool in self.tools.values()], pid=os.getpid(), modules=self.modules
        )

    async def CallTool(
        self, request: pb.ToolCallRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ToolCallResponse:
        started = time.perf_counter()
        self._begin()
        call = ToolContext(request.tool_id, request.session_id, request.request_id)
        try:
            tool = self._tool(request.tool_id)
            arguments = tool.bind(_decode_args(request.args), _decode_kwargs(request.kwargs))
            timeout_ms = _timeout(request.timeout_ms, tool.timeout_ms, context)
            result = await _bounded(tool.call(arguments, call), timeout_ms, tool, call)
            encoded = encode_value(result)
            return pb.ToolCallResponse(
                success=True, result=encoded, request_id=request.request_id, metrics=_metrics(started)
            )
        except asyncio.CancelledError:
            call.cancelled.set()
            raise
        except Exception as error:
            return pb.ToolCallResponse(
                success=False,
                error=self._error_info(request.tool_id, error),
                request_id=request.request_id,
                metrics=_metrics(started),
            )
        finally:
            self._end()

    async def StreamTool(
        self, request: pb.ToolStreamRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ToolStreamChunk]:
        started = time.perf_counter()
        self._begin()
        stream_id = request.stream_id or f"pystream_{uuid.uuid4().hex[:12]}"
        call = ToolContext(request.tool_id, request.session_id, request.request_id)
        sequence = 0
        chunks: AsyncIterator[Any] | None = None
        try:
            tool = self._tool(request.tool_id)
            arguments = tool.bind(_decode_args(request.args), _decode_kwargs(request.kwargs))
            # timeout_ms is the whole stream's budget (slow reads included), idle_timeout_ms
            # the longest wait for one chunk: each wait is bounded by the nearer of the two.
            budget = _StreamBudget(
                _timeout(request.timeout_ms, tool.timeout_ms, None), request.idle_timeout_ms
            )
            chunks = tool.stream(arguments, call)
            while True:
                try:
                    chunk = await budget.next_chunk(anext(chunks), tool, call)
                except StopAsyncIteration:
                    break
                yield pb.ToolStreamChunk(stream_id=stream_id, sequence=sequence, data=encode_value(chunk))
                sequence += 1
            complete = pb.StreamComplete(total_chunks=sequence, metrics=_metrics(started))
            yield pb.ToolStreamChunk(stream_id=stream_id, sequence=sequence, complete=complete)
        except (asyncio.CancelledError, GeneratorExit):
            call.cancelled.set()
            raise
        except Exception as error:
            info = self._error_info(request.tool_id, error)
            yield pb.ToolStreamChunk(stream_id=stream_id, sequence=sequence, error=info)
        finally:
            if chunks is not None:
                with contextlib.suppress(BaseException):
                    await chunks.aclose()  # type: ignore[attr-defined]
            self._end()

    # -- liveness

    async def Heartbeat(
        self,
        request_iterator: AsyncIterator[worker_pb2.WorkerPing],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[worker_pb2.WorkerStatus]:
        self.watchdog.attach()
        try:
            async for ping in request_iterator:
                self.watchdog.ping(ping.timeout_ms)
                yield worker_pb2.WorkerStatus(
                    sequence=ping.sequence,
                    pid=os.getpid(),
                    in_flight=self.in_flight,
                    requests_total=self.requests_total,
                    rss_bytes=rss_bytes(),
                    agents_ready=self.agents.ready,
                )
        finally:
            self.watchdog.detach()

    # -- agents

    async def RunAgent(
        self, request: worker_pb2.RunAgentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[worker_pb2.AgentRunEvent]:
        self._begin()
        try:
            async for event in self.agents.run(request):
                yield event
        finally:
            self._end()

    # -- helpers

    def _begin(self) -> None:
        self.in_flight += 1
        self.requests_total += 1

    def _end(self) -> None:
        self.in_flight -= 1

    def _tool(self, name: str) -> WorkerTool:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            raise CallFailure(
                ErrorType.TOOL_NOT_FOUND, f"no Python tool '{name}' in this worker; its tools: {known}"
            )
        return tool

    def _error_info(self, tool_name: str, error: Exception) -> pb.ErrorInfo:
        failure = failure_from(tool_name, error)
        own = not isinstance(error, CallFailure)
        return failure.to_pb(stacktrace_of(error) if self.expose_stacktraces and own else "")


def _decode_args(values: Any) -> list[Any]:
    return [decode_value(value) for value in values]


def _decode_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: decode_value(value) for key, value in values.items()}


def _timeout(requested_ms: int, own_ms: int, context: grpc.aio.ServicerContext[Any, Any] | None) -> int:
    """The shorter of the caller's and the tool's own timeout; 0 when neither is set.

    A caller's timeout that came with a gRPC deadline is left to the deadline (its expiry
    cancels the call here too): one timer per call instead of two.
    """
    if requested_ms > 0 and context is not None and context.time_remaining() is not None:
        requested_ms = 0
    if requested_ms > 0 and own_ms > 0:
        return min(requested_ms, own_ms)
    return requested_ms or own_ms


async def _bounded(pending: Awaitable[T], timeout_ms: int, tool: WorkerTool, call: ToolContext) -> T:
    if timeout_ms <= 0:
        return await pending
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            return await pending
    except TimeoutError:
        call.cancelled.set()
        raise _timeout_failure(
            f"tool '{tool.name}' did not finish within {timeout_ms} ms", "total", timeout_ms
        ) from None


class _StreamBudget:
    """A stream's total budget (``total_ms``) and idle timeout (``idle_ms``); 0 is none."""

    def __init__(self, total_ms: int, idle_ms: int) -> None:
        self.total_ms = total_ms
        self.idle_ms = idle_ms
        self.deadline = time.monotonic() + total_ms / 1000 if total_ms > 0 else None

    async def next_chunk(self, pending: Awaitable[T], tool: WorkerTool, call: ToolContext) -> T:
        left_s = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        idle_s = self.idle_ms / 1000 if self.idle_ms > 0 else None
        wait_s = left_s if idle_s is None or (left_s is not None and left_s <= idle_s) else idle_s
        if wait_s is None:
            return await pending
        try:
            async with asyncio.timeout(wait_s):
                return await pending
        except TimeoutError:
            call.cancelled.set()
            if wait_s == left_s:
                message = f"the stream of tool '{tool.name}' ran past its total budget of {self.total_ms} ms"
                raise _timeout_failure(message, "total", self.total_ms) from None
            message = f"tool '{tool.name}' produced no chunk within {self.idle_ms} ms (its idle timeout)"
            raise _timeout_failure(message, "idle", self.idle_ms) from None


def _timeout_failure(message: str, which: str, timeout_ms: int) -> CallFailure:
    """A Timeout whose details say which timeout expired ("total" or "idle") and its length."""
    return CallFailure(ErrorType.TIMEOUT, message, {"timeout": which, "timeout_ms": str(timeout_ms)})


def _metrics(started: float) -> pb.ExecutionMetrics:
    elapsed = (time.perf_counter() - started) * 1000
    return pb.ExecutionMetrics(duration_ms=elapsed, host_ms=elapsed)
