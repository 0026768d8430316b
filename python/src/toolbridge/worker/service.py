"""The ToolBridgeWorker service (proto/toolbridge/v1/worker.proto) over a worker's tools."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import grpc

from toolbridge.core.errors import ErrorType
from toolbridge.core.tracing import CallSpan, active, continued, start_server_span
from toolbridge.core.values import decode_value, encode_value
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import worker_pb2, worker_pb2_grpc
from toolbridge.worker.backstop import Backstops
from toolbridge.worker.context import ToolContext
from toolbridge.worker.failures import CallFailure, failure_from, stacktrace_of
from toolbridge.worker.tools import WorkerTool
from toolbridge.worker.watchdog import Watchdog, rss_bytes


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
        self.backstops = Backstops()

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
        # The call's span continues the host's trace (its worker call's span), when traced.
        span = start_server_span(
            f"execute_tool {request.tool_id}",
            context.invocation_metadata() or (),
            _span_attributes(request, "CallTool"),
        )
        try:
            with active(span):
                response = await self._call_tool(request)
            if span is not None and not response.success:
                span.fail(response.error.type, response.error.message)
            return response
        except asyncio.CancelledError:
            if span is not None:
                span.fail(ErrorType.CANCELLED, "the host cancelled the call")
            raise
        finally:
            if span is not None:
                span.end()

    async def _call_tool(self, request: pb.ToolCallRequest) -> pb.ToolCallResponse:
        started = time.perf_counter()
        self._begin()
        call = ToolContext(request.tool_id, request.session_id, request.request_id)
        try:
            tool = self._tool(request.tool_id)
            arguments = tool.bind(_decode_args(request.args), _decode_kwargs(request.kwargs))
            backstop = self.backstops.backstop(tool.name, request.timeout_ms, call)
            result = await backstop.wait(tool.call(arguments, call))
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
        span = start_server_span(
            f"execute_tool {request.tool_id}",
            context.invocation_metadata() or (),
            _span_attributes(request, "StreamTool"),
        )
        try:
            async for chunk in self._stream_tool(request, span):
                if span is not None and chunk.WhichOneof("content") == "error":
                    span.fail(chunk.error.type, chunk.error.message)
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            if span is not None:
                span.fail(ErrorType.CANCELLED, "the host cancelled the stream")
            raise
        finally:
            if span is not None:
                span.end()

    async def _stream_tool(
        self, request: pb.ToolStreamRequest, span: CallSpan | None
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
            # timeout_ms is the host's budget for the whole stream; the host also keeps its idle
            # timeout (idle_timeout_ms), which the worker leaves to it.
            backstop = self.backstops.backstop(tool.name, request.timeout_ms, call)
            chunks = tool.stream(arguments, call)
            while True:
                if backstop.passed():  # while the last chunk was being sent
                    call.cancelled.set()
                    raise backstop.failure()
                try:
                    # Each step runs in the call's span: a stream's steps may run in different contexts.
                    with active(span):
                        chunk = await backstop.wait(anext(chunks))
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
            # The run's invoke_agent span continues the trace of whoever started it on the host.
            with continued(context.invocation_metadata() or ()):
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


def _span_attributes(request: pb.ToolCallRequest | pb.ToolStreamRequest, method: str) -> dict[str, Any]:
    """The attributes of a call's execute_tool span (docs/tracing.md)."""
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": request.tool_id,
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": request.request_id,
        "toolbridge.session.id": request.session_id,
        "rpc.system": "grpc",
        "rpc.service": "toolbridge.v1.ToolBridgeWorker",
        "rpc.method": method,
    }


def _decode_args(values: Any) -> list[Any]:
    return [decode_value(value) for value in values]


def _decode_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: decode_value(value) for key, value in values.items()}


def _metrics(started: float) -> pb.ExecutionMetrics:
    elapsed = (time.perf_counter() - started) * 1000
    return pb.ExecutionMetrics(duration_ms=elapsed, host_ms=elapsed)
