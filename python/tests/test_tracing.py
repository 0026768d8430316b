"""One trace across Python, the host, its tools, its workers and other hosts (docs/tracing.md).

Every process exports to one real OTLP/gRPC endpoint (``otlp_receiver``): this test process
through the OpenTelemetry SDK, the hosts (``--tracing true``) and their Python workers through
the ``OTEL_*`` variables. The tests read the spans back and check their trace, their parents
and their attributes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import dspy
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from toolbridge import HostProcess, ToolBridgeClient, ToolCallError
from toolbridge.agent import AgentDefinition, SessionAgents
from toolbridge.agent.scripted import ScriptedLM, answer_turn, finish_turn, tool_turn
from toolbridge.dspy import GRPCToolBridge
from toolbridge.launch.redis import launch_redis_server

from .conftest import REPO_ROOT, TEST_TOOLS, spawn_host
from .otlp_receiver import OtlpReceiver, ReceivedSpan, exporter_env, otlp_receiver

pytestmark = pytest.mark.timeout(240)

TRACING_TOOLS = REPO_ROOT / "testdata" / "tools" / "tracing-tools.ts"
POOL_TOOLS = REPO_ROOT / "testdata" / "workers" / "pool_tools.py"
CALLS = "toolbridge.v1.ToolBridge/Calls"
EXECUTE = "toolbridge.v1.ToolBridge/ExecuteTool"
WORKER_CALL = "toolbridge.v1.ToolBridgeWorker/CallTool"
SERVER, CLIENT = 2, 3  # OTLP span kinds
STATUS_ERROR = 2


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as received:
        yield received


@pytest.fixture(scope="module")
def provider(receiver: OtlpReceiver) -> Iterator[TracerProvider]:
    """This process's tracer provider, exporting each span to the receiver as it ends."""
    made = TracerProvider(resource=Resource.create({"service.name": "python-test"}))
    made.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)))
    trace.set_tracer_provider(made)
    assert trace.get_tracer_provider() is made, "another tracer provider was registered in this process"
    yield made
    made.shutdown()


@pytest.fixture
def tracer(provider: TracerProvider) -> trace.Tracer:
    return provider.get_tracer("test_tracing")


@pytest.fixture(scope="module")
async def traced_host(receiver: OtlpReceiver) -> AsyncIterator[HostProcess]:
    """A host that traces, with one Python worker (testdata/workers/pool_tools.py) and the tracing tools."""
    host = await spawn_host(
        {
            "tracing": "true",
            "workers": 1,
            "worker-module": str(POOL_TOOLS),
            "worker-python": sys.executable,
        },
        tools=[TRACING_TOOLS],
        env=exporter_env(receiver, "traced-host"),
    )
    yield host
    assert await host.stop() == 0, host.output()


def hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def ids(span: Any) -> tuple[str, str]:
    """(trace id, span id) of a span of this process, as the receiver shows them."""
    context = span.get_span_context()
    return hex_id(context.trace_id, 32), hex_id(context.span_id, 16)


def of_trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == trace_id]


def named(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    matches = [span for span in spans if span.name == name]
    assert len(matches) == 1, f"{len(matches)} spans named {name!r} in {sorted(s.name for s in spans)}"
    return matches[0]


def has_names(trace_id: str, *names: str) -> Any:
    return lambda spans: set(names) <= {span.name for span in of_trace(spans, trace_id)}


async def test_a_call_continues_the_callers_trace_through_its_tool_and_a_worker(
    traced_host: HostProcess, receiver: OtlpReceiver, tracer: trace.Tracer
) -> None:
    async with ToolBridgeClient(traced_host.target) as client:
        session = await client.initialize_session()
        with tracer.start_as_current_span("python step") as step:
            seen = await client.execute_tool("traced_work", worker_value="hi")
    trace_id, step_id = ids(step)
    spans = of_trace(
        receiver.wait_for(
            has_names(trace_id, CALLS, "execute_tool traced_work", "lookup", WORKER_CALL, "execute_tool echo")
        ),
        trace_id,
    )
    rpc = named(spans, CALLS)
    assert (rpc.parent_id, rpc.kind, rpc.service) == (step_id, SERVER, "traced-host")
    assert rpc.attributes["rpc.system"] == "grpc"
    # The service is the span's name before the slash; the host does not repeat it per span.
    assert rpc.attributes["rpc.method"] == "Calls"
    assert "rpc.service" not in rpc.attributes
    tool = named(spans, "execute_tool traced_work")
    assert tool.parent_id == rpc.span_id
    assert {key: tool.attributes[key] for key in GENAI_KEYS} == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "traced_work",
        "toolbridge.session.id": session.session_id,
        "toolbridge.principal": "@anonymous",
        "toolbridge.protocol": "grpc",
    }
    # What is usually false is recorded only when true (each attribute is encoded again per export).
    assert not {"toolbridge.replayed", "toolbridge.streamed"} & set(tool.attributes)
    assert str(tool.attributes["gen_ai.tool.call.id"]).startswith("req_")
    assert "error.type" not in tool.attributes
    assert "gen_ai.tool.call.arguments" not in tool.attributes, "content is recorded only when asked for"
    # The tool's code ran in its span: what it saw active, and the span of its own work.
    assert (seen["traceId"], seen["spanId"]) == (trace_id, tool.span_id)
    assert named(spans, "lookup").parent_id == tool.span_id
    worker_call = named(spans, WORKER_CALL)
    assert (worker_call.parent_id, worker_call.kind) == (tool.span_id, CLIENT)
    assert worker_call.attributes["gen_ai.tool.name"] == "echo"
    in_worker = named(spans, "execute_tool echo")
    assert (in_worker.parent_id, in_worker.kind) == (worker_call.span_id, SERVER)
    assert in_worker.attributes["rpc.service"] == "toolbridge.v1.ToolBridgeWorker"
    assert in_worker.attributes["toolbridge.session.id"] == session.session_id
    assert seen["echoed"] == "hi"


async def test_a_tool_calling_another_tool_nests_the_inner_call_under_its_span(
    traced_host: HostProcess, receiver: OtlpReceiver, tracer: trace.Tracer
) -> None:
    async with ToolBridgeClient(traced_host.target) as client:
        await client.initialize_session()
        with tracer.start_as_current_span("python step") as step:
            await client.execute_tool("call_through_client", tool="active_span")
    trace_id, _ = ids(step)
    spans = of_trace(receiver.wait_for(has_names(trace_id, "execute_tool active_span", EXECUTE)), trace_id)
    outer = named(spans, "execute_tool call_through_client")
    # The TypeScript client in the tool sent the outer span's context; the inner call continues it.
    inner_rpc = named(spans, EXECUTE)
    assert (inner_rpc.parent_id, inner_rpc.kind) == (outer.span_id, SERVER)
    assert named(spans, "execute_tool active_span").parent_id == inner_rpc.span_id


GENAI_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.tool.name",
    "toolbridge.session.id",
    "toolbridge.principal",
    "toolbridge.protocol",
)


async def test_a_failed_call_and_a_unary_call_carry_their_error_and_their_parent(
    traced_host: HostProcess, receiver: OtlpReceiver, tracer: trace.Tracer
) -> None:
    async with ToolBridgeClient(traced_host.target, multiplex=False) as client:
        await client.initialize_session()
        with tracer.start_as_current_span("python step") as step, pytest.raises(ToolCallError, match="boom"):
            await client.execute_tool("fail", message="boom")
    trace_id, step_id = ids(step)
    spans = of_trace(receiver.wait_for(has_names(trace_id, EXECUTE, "execute_tool fail")), trace_id)
    rpc = named(spans, EXECUTE)
    assert (rpc.parent_id, rpc.attributes["rpc.grpc.status_code"]) == (step_id, 0)
    host_tool = next(
        span for span in spans if span.name == "execute_tool fail" and span.parent_id == rpc.span_id
    )
    assert (host_tool.attributes["error.type"], host_tool.status_code) == ("ToolExecutionError", STATUS_ERROR)


async def test_32_concurrent_calls_on_one_stream_each_continue_their_own_caller(
    traced_host: HostProcess, receiver: OtlpReceiver, tracer: trace.Tracer
) -> None:
    async with ToolBridgeClient(traced_host.target) as client:
        await client.initialize_session()

        async def call(index: int) -> tuple[str, str, dict[str, Any]]:
            with tracer.start_as_current_span(f"caller {index}") as caller:
                # The tool answers once all 32 calls have reached it: they are in flight together.
                seen = await client.execute_tool("rendezvous", key="32-callers", n=32)
            return (*ids(caller), seen)

        results = await asyncio.gather(*(call(index) for index in range(32)))
        assert client.transport.calls is not None
        assert client.transport.calls.connected
    assert len({trace_id for trace_id, _, _ in results}) == 32
    wanted = {trace_id for trace_id, _, _ in results}
    spans = receiver.wait_for(
        lambda got: sum(1 for s in got if s.trace_id in wanted and s.name == "execute_tool rendezvous") == 32
    )
    by_id = {span.span_id: span for span in spans}
    for trace_id, caller_id, seen in results:
        tool = by_id[seen["spanId"]]
        rpc = by_id[tool.parent_id]
        assert (tool.name, rpc.name) == ("execute_tool rendezvous", CALLS)
        assert (tool.trace_id, rpc.trace_id, rpc.parent_id) == (trace_id, trace_id, caller_id)


async def test_a_forwarded_call_continues_the_trace_on_the_serving_host(
    receiver: OtlpReceiver, tracer: trace.Tracer
) -> None:
    async with launch_redis_server() as url:
        hosts = [
            await spawn_host(
                {"store": url, "tracing": "true"},
                tools=[TEST_TOOLS, TRACING_TOOLS],
                env=exporter_env(receiver, f"host-{name}"),
            )
            for name in ("a", "b")
        ]
        try:
            async with ToolBridgeClient(hosts[0].target) as a, ToolBridgeClient(hosts[1].target) as b:
                session = await a.initialize_session()
                await b.initialize_session(session.session_id)
                await b.execute_tool("register_session_echo", name="remote_echo")
                node_a = (await a.execute_tool("node_info"))["node"]
                node_b = (await b.execute_tool("node_info"))["node"]
                with tracer.start_as_current_span("python step") as step:
                    result = await a.execute_tool("remote_echo", value="hi")
        finally:
            for host in hosts:
                await host.stop()
    assert result["node"] == node_b != node_a
    trace_id, step_id = ids(step)
    spans = of_trace(receiver.wait_for(has_names(trace_id, CALLS, EXECUTE)), trace_id)
    rpc_a = named(spans, CALLS)
    assert (rpc_a.parent_id, rpc_a.service) == (step_id, "host-a")
    tools = [span for span in spans if span.name == "execute_tool remote_echo"]
    on_a = next(span for span in tools if span.service == "host-a")
    on_b = next(span for span in tools if span.service == "host-b")
    assert on_a.parent_id == rpc_a.span_id
    assert (on_a.attributes["toolbridge.node"], on_a.attributes["toolbridge.remote.node"]) == (node_a, node_b)
    rpc_b = named(spans, EXECUTE)
    assert (rpc_b.service, rpc_b.parent_id) == ("host-b", on_a.span_id)
    assert (on_b.parent_id, on_b.attributes["toolbridge.node"]) == (rpc_b.span_id, node_b)
    # Redis round trips of the call (the session check, finding the tool's node) nest in host A's spans.
    redis = [span for span in spans if span.attributes.get("db.system.name") == "redis"]
    assert redis, f"no Redis spans in {sorted(s.name for s in spans)}"
    host_a_ids = {span.span_id for span in spans if span.service == "host-a"}
    assert all(
        span.parent_id in host_a_ids | {s.span_id for s in spans if s.service == "host-b"} for span in redis
    )
    assert any(span.parent_id in host_a_ids for span in redis)


def react_script(tool: str) -> ScriptedLM:
    return ScriptedLM(
        [tool_turn("Look at the span.", tool), finish_turn("Done."), answer_turn("Seen.", answer="ok")]
    )


@pytest.fixture(scope="module")
def dspy_instrumented(provider: TracerProvider) -> Iterator[None]:
    """OpenInference's DSPy instrumentation for these tests, removed afterwards (it patches DSPy's classes).

    Once for the module: instrumenting again after uninstrumenting leaves DSPy's callbacks unrun
    (openinference-instrumentation-dspy 0.1.48).
    """
    from openinference.instrumentation.dspy import DSPyInstrumentor

    instrumentor = DSPyInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield
    instrumentor.uninstrument()


async def test_bridge_tool_calls_nest_under_the_openinference_dspy_tool_spans(
    traced_host: HostProcess, receiver: OtlpReceiver, tracer: trace.Tracer, dspy_instrumented: None
) -> None:
    bridge = GRPCToolBridge(traced_host.target)
    await bridge.initialize()
    try:
        agent = dspy.ReAct("question -> answer", tools=bridge.get_dspy_tools(["active_span"]), max_iters=3)
        with tracer.start_as_current_span("program") as root, dspy.context(lm=react_script("active_span")):
            await agent.acall(question="Which span?")
    finally:
        await bridge.cleanup()
    trace_id, _ = ids(root)
    spans = of_trace(
        receiver.wait_for(has_names(trace_id, "active_span.acall", "execute_tool active_span")), trace_id
    )
    tool_span = named(spans, "active_span.acall")
    assert tool_span.attributes["openinference.span.kind"] == "TOOL"
    rpc = next(span for span in spans if span.name == CALLS and span.parent_id == tool_span.span_id)
    assert named(spans, "execute_tool active_span").parent_id == rpc.span_id


async def test_an_agent_run_is_an_invoke_agent_span_with_each_step_and_tool_call_beneath_it(
    traced_host: HostProcess, receiver: OtlpReceiver, tracer: trace.Tracer, dspy_instrumented: None
) -> None:
    bridge = GRPCToolBridge(traced_host.target)
    await bridge.initialize()
    try:
        definition = AgentDefinition.create("question -> answer", ["active_span"], 3)
        with tracer.start_as_current_span("caller") as root:
            run = await SessionAgents(bridge).run_definition(
                definition, {"question": "Which span?"}, lm=react_script("active_span")
            )
    finally:
        await bridge.cleanup()
    assert run.status == "succeeded"
    trace_id, root_id = ids(root)
    spans = of_trace(
        receiver.wait_for(has_names(trace_id, "invoke_agent ReAct", "execute_tool finish", CALLS)), trace_id
    )
    by_id = {span.span_id: span for span in spans}
    agent = named(spans, "invoke_agent ReAct")
    assert agent.parent_id == root_id
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert (agent.attributes["gen_ai.agent.id"], agent.attributes["toolbridge.agent.run_id"]) == (
        definition.agent_id,
        run.run_id,
    )

    def under_agent(span: ReceivedSpan) -> bool:
        while span.parent_id in by_id:
            span = by_id[span.parent_id]
            if span is agent:
                return True
        return False

    steps = [
        span
        for span in spans
        if span.name.startswith("execute_tool")
        and span.service == "python-test"
        and "toolbridge.agent.step" in span.attributes
    ]
    assert sorted(
        (s.attributes["toolbridge.agent.step"], s.attributes["gen_ai.tool.name"]) for s in steps
    ) == [
        (1, "active_span"),
        (2, "finish"),
    ]
    assert all(under_agent(step) for step in steps)
    first = next(step for step in steps if step.attributes["toolbridge.agent.step"] == 1)
    rpc = next(span for span in spans if span.name == CALLS)
    assert rpc.parent_id == first.span_id, "the host's span of the step's call is the step's child"


async def test_a_host_traces_nothing_unless_asked(receiver: OtlpReceiver, tracer: trace.Tracer) -> None:
    host = await spawn_host(tools=[TRACING_TOOLS], env=exporter_env(receiver, "untraced-host"))
    try:
        async with ToolBridgeClient(host.target) as client:
            await client.initialize_session()
            with tracer.start_as_current_span("python step") as step:
                seen = await client.execute_tool("active_span")
    finally:
        assert await host.stop() == 0
    trace_id, _ = ids(step)
    receiver.wait_for(has_names(trace_id, "python step"))
    assert seen == {"traceId": "", "spanId": ""}, "no span is active in a tool of a host that does not trace"
    assert not [span for span in receiver.spans if span.service == "untraced-host"]
