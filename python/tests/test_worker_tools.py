"""@toolbridge.tool and the worker process: schemas from type hints and docstrings, argument
and result checks, the error vocabulary, cancellation reaching sync and async code, the
deadline the worker keeps as a backstop, a worker leaving when its host is gone and dialing
no host but its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import grpc
import numpy as np
import pytest
from pydantic import BaseModel, Field

import toolbridge
from toolbridge import ToolBridgeClient, ToolExecutionError, start_host
from toolbridge.core.errors import ErrorType, ToolCallError
from toolbridge.core.values import decode_value, encode_value
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import worker_pb2, worker_pb2_grpc
from toolbridge.worker import ToolContext, WorkerTool, current_context, tool, tools_of
from toolbridge.worker.failures import CallFailure
from toolbridge.worker.schema import parse_docstring
from toolbridge.worker.watchdog import CLOSED_STREAM_GRACE_S, Watchdog, remove_socket_dir

from .conftest import CLI, REPO_ROOT

WORKERS_DIR = Path(__file__).resolve().parents[2] / "testdata" / "workers"


def spec_of(fn: Any) -> WorkerTool:
    marked = fn.__toolbridge_tool__
    assert isinstance(marked, WorkerTool)
    return marked


class Address(BaseModel):
    city: str
    zip_code: str = ""


def test_schema_from_type_hints_and_google_docstring() -> None:
    @tool
    def ship(
        weight_kg: float,
        address: Address,
        speed: Literal["standard", "express"] = "standard",
        note: str | None = None,
        count: Annotated[int, Field(ge=1, le=10)] = 1,
    ) -> dict[str, float]:
        """Prices a shipment.

        Args:
            weight_kg: weight of the parcel
            address: where it goes
            speed: how fast
        """
        return {"price": weight_kg}

    described = spec_of(ship)
    assert described.description == "Prices a shipment."
    schema = json.loads(described.spec.parameters_schema)
    assert schema["required"] == ["weight_kg", "address"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["weight_kg"] == {"type": "number", "description": "weight of the parcel"}
    assert props["speed"]["enum"] == ["standard", "express"]
    assert props["count"]["minimum"] == 1
    assert props["count"]["maximum"] == 10
    assert "$defs" in schema
    assert "Address" in schema["$defs"]
    assert [p.name for p in described.spec.parameters] == ["weight_kg", "address", "speed", "note", "count"]
    assert json.loads(described.spec.output_schema)["type"] == "object"


def test_docstring_styles() -> None:
    numpy_style = parse_docstring("Sum.\n\nParameters\n----------\na : int\n    first\nb : int\n    second\n")
    sphinx_style = parse_docstring("Sum.\n\n:param a: first\n:param int b: second\n")
    assert numpy_style.params == sphinx_style.params == {"a": "first", "b": "second"}
    assert numpy_style.summary == sphinx_style.summary == "Sum."


def test_context_parameter_is_injected_not_published_and_ndarray_is_checked() -> None:
    @tool(name="norm.l2", timeout_ms=500, idempotent=True)
    def norm(vector: np.ndarray, context: ToolContext) -> float:
        """Length of a vector."""
        assert context.tool_name == "norm.l2"
        return float(np.linalg.norm(vector))

    described = spec_of(norm)
    schema = json.loads(described.spec.parameters_schema)
    assert list(schema["properties"]) == ["vector"]
    assert schema["properties"]["vector"] == {}
    assert described.spec.limits.timeout_ms == 500
    assert described.spec.idempotent
    assert asyncio.run(described.call({"vector": np.array([3.0, 4.0])}, ToolContext("norm.l2"))) == 5.0
    with pytest.raises(CallFailure) as refused:
        asyncio.run(described.call({"vector": [3, 4]}, ToolContext("norm.l2")))
    assert refused.value.type == ErrorType.VALIDATION_ERROR
    assert refused.value.details == {"field": "vector"}


def test_refuses_signatures_it_cannot_describe() -> None:
    def spread(*items: int) -> int:
        return sum(items)

    with pytest.raises(TypeError, match=r"\*items"):
        tool(spread)
    with pytest.raises(ValueError, match="invalid tool name"):
        tool(name="has space")(lambda: None)


async def test_arguments_bind_and_are_checked() -> None:
    @tool
    def add(a: int, b: int = 0) -> int:
        return a + b

    described = spec_of(add)
    assert await described.call(described.bind([2], {"b": 3}), ToolContext("add")) == 5
    for bad, field in (({"a": "x"}, "a"), ({"a": 1, "z": 2}, "z"), ({}, "a")):
        with pytest.raises(CallFailure) as refused:
            await described.call(bad, ToolContext("add"))
        assert refused.value.type == ErrorType.VALIDATION_ERROR
        assert refused.value.details["field"] == field
    with pytest.raises(CallFailure, match="both by position and by name"):
        described.bind([1], {"a": 2})
    with pytest.raises(CallFailure, match="at most 2 positional"):
        described.bind([1, 2, 3], {})


async def test_results_in_wire_form_and_the_context_inside() -> None:
    @tool
    async def where(city: str) -> Address:
        assert current_context().tool_name == "where"
        return Address(city=city)

    assert await spec_of(where).call({"city": "Lyon"}, ToolContext("where")) == {
        "city": "Lyon",
        "zip_code": "",
    }


async def test_failures_map_to_the_error_vocabulary() -> None:
    from toolbridge.worker.failures import failure_from

    assert failure_from("t", KeyError("k")).details == {"exception": "KeyError"}
    assert failure_from("t", KeyError("k")).type == ErrorType.TOOL_EXECUTION_ERROR
    nested = ToolCallError("other", ErrorType.TIMEOUT, "too slow", {"timeout_ms": 5})
    assert failure_from("t", nested).type == ErrorType.TIMEOUT
    assert failure_from("t", nested).details == {"timeout_ms": "5"}


async def test_cancellation_reaches_async_sync_and_generator_code() -> None:
    seen: list[str] = []
    released = threading.Event()
    # Set by each waiting tool once it runs: the cancel must find it running, not unstarted.
    began = {"slow_async": threading.Event(), "slow_sync": threading.Event()}

    @tool
    async def slow_async() -> None:
        began["slow_async"].set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("async")
            raise

    @tool
    def slow_sync(context: ToolContext) -> None:
        began["slow_sync"].set()
        if context.cancelled.wait(60):
            seen.append("sync")
        released.set()

    @tool
    def numbers() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            seen.append("generator")

    @tool
    async def anumbers() -> AsyncIterator[int]:
        try:
            for i in range(1000):
                yield i
                await asyncio.sleep(0)
        finally:
            seen.append("async generator")

    for fn in (slow_async, slow_sync):
        task = asyncio.create_task(spec_of(fn).call({}, ToolContext(fn.__name__)))
        assert await asyncio.to_thread(began[fn.__name__].wait, 10), f"{fn.__name__} never started"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.to_thread(released.wait, 10)
    generators: tuple[Any, ...] = (numbers, anumbers)
    for gen in generators:
        stream = spec_of(gen).stream({}, ToolContext(gen.__name__))
        assert [await anext(stream), await anext(stream)] == [0, 1]
        await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(100):
        if len(seen) == 4:
            break
        await asyncio.sleep(0.02)
    assert sorted(seen) == ["async", "async generator", "generator", "sync"]


def test_tools_of_a_module_and_the_lazy_top_level_name() -> None:
    sys.path.insert(0, str(WORKERS_DIR))
    try:
        import pool_tools
    finally:
        sys.path.remove(str(WORKERS_DIR))
    names = [t.name for t in tools_of(pool_tools)]
    assert names[:3] == ["echo", "echo_async", "add"]
    assert toolbridge.tool is tool


def test_a_worker_without_a_host_exits_by_itself() -> None:
    """No heartbeat arrives: the worker leaves after its timeout (exit 3) instead of staying forever."""
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolbridge.worker",
            "--port",
            "0",
            "--module",
            "pool_tools",
            "--heartbeat-timeout-ms",
            "300",
        ],
        cwd=WORKERS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 3, worker.stderr
    assert worker.stdout.startswith("toolbridge worker ready 127.0.0.1:")
    assert "no heartbeat from the host for 300 ms" in worker.stderr


def test_a_module_that_cannot_be_imported_is_a_usage_error() -> None:
    worker = subprocess.run(
        [sys.executable, "-m", "toolbridge.worker", "--port", "0", "--module", "no_such_module_here"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 2
    assert "cannot import module 'no_such_module_here'" in worker.stderr


async def test_results_are_checked_and_converted_by_the_return_annotation() -> None:
    @tool
    def as_float(x: int) -> float:
        return x  # an int where a float is promised: pydantic makes it one

    @tool
    def broken() -> dict[str, list[int]]:
        bad: Any = {"a": [1, "two"], "b-c": ["x"]}
        return bad  # type: ignore[no-any-return]

    @tool
    def chunks() -> Iterator[float]:
        yield 1
        bad: Any = "three"
        yield bad

    result = await spec_of(as_float).call({"x": 3}, ToolContext("as_float"))
    assert (type(result), result) == (float, 3.0)
    assert json.loads(spec_of(as_float).spec.output_schema) == {"type": "number"}
    with pytest.raises(CallFailure) as refused:
        await spec_of(broken).call({}, ToolContext("broken"))
    assert refused.value.type == ErrorType.TOOL_EXECUTION_ERROR
    assert refused.value.details == {"reason": "output_schema", "path": "$.a[1]"}
    assert refused.value.message.startswith(
        "tool 'broken' returned a result that does not match its output schema: $.a[1]: "
    )
    assert '$["b-c"][0]' in refused.value.message
    stream = spec_of(chunks).stream({}, ToolContext("chunks"))
    first = await anext(stream)
    assert type(first) is float
    with pytest.raises(CallFailure) as chunk_refused:
        await anext(stream)
    assert chunk_refused.value.details == {"reason": "output_schema", "path": "$", "chunk": "1"}


def test_a_model_result_publishes_its_schema() -> None:
    @tool
    def where(city: str) -> Address:
        return Address(city=city)

    schema = json.loads(spec_of(where).spec.output_schema)
    assert schema["properties"]["city"]["type"] == "string"
    assert schema["required"] == ["city"]


async def test_a_python_client_gets_a_worker_tools_floats_as_floats() -> None:
    """Through a real host: the float the worker sends stays a float, also inside untyped maps."""
    flags: dict[str, str | int] = {
        "workers": 1,
        "worker-module": str(WORKERS_DIR / "pool_tools.py"),
        "worker-python": sys.executable,
        "worker-preload-agents": "false",
    }
    # No TypeScript tools: the Python module's own names (echo, add) would clash with theirs.
    host = await start_host([], flags, cli=["node", str(CLI)], cwd=REPO_ROOT)
    try:
        async with ToolBridgeClient(host.target) as client:
            await client.initialize_session()
            specs = {spec.name: spec for spec in await client.list_tools()}
            assert specs["as_float"].output_schema == {"type": "number"}
            result = await client.execute_tool("as_float", x=3)
            assert (type(result), result) == (float, 3.0)
            measured = await client.execute_tool("measurements")
            assert [type(measured[key]).__name__ for key in ("ratio", "count")] == ["float", "int"]
            assert [type(item).__name__ for item in measured["samples"]] == ["float", "float", "int"]
            assert [type(chunk) for chunk in await client.execute_tool("float_chunks", n=2)] == [float, float]
            with pytest.raises(ToolExecutionError) as refused:
                await client.execute_tool("wrong_type", x=1)
            assert refused.value.details["reason"] == "output_schema"
            assert refused.value.details["path"] == "$"
    finally:
        assert await host.stop() == 0, host.output()


@contextlib.asynccontextmanager
async def hand_run_worker(*flags: str) -> AsyncIterator[worker_pb2_grpc.ToolBridgeWorkerAsyncStub]:
    """A worker started by hand on a loopback port, with no heartbeat timeout, and a stub to it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "toolbridge.worker",
        "--port",
        "0",
        "--module",
        "pool_tools",
        "--heartbeat-timeout-ms",
        "0",
        *flags,
        cwd=WORKERS_DIR,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "TOOLBRIDGE_TOKEN": "the-host-token", "TOOLBRIDGE_LM": ""},
    )
    assert process.stdout is not None
    ready = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    assert ready.startswith("toolbridge worker ready "), ready
    channel = grpc.aio.insecure_channel(ready.split()[3])
    try:
        yield worker_pb2_grpc.ToolBridgeWorkerStub(channel)
    finally:
        await channel.close(grace=None)
        process.kill()
        await process.wait()


async def test_a_call_the_host_never_cancels_is_stopped_by_the_worker_after_its_deadline() -> None:
    async with hand_run_worker() as worker:
        request = pb.ToolCallRequest(
            tool_id="sleep",
            kwargs={"ms": encode_value(60_000), "marker": encode_value("backstop")},
            timeout_ms=200,
        )
        response = await worker.CallTool(request, timeout=30)
        assert not response.success
        assert response.error.type == ErrorType.TIMEOUT
        assert dict(response.error.details) == {"timeout": "total", "timeout_ms": "200", "backstop": "true"}
        seen = await worker.CallTool(pb.ToolCallRequest(tool_id="cancellations"), timeout=30)
        assert "sleep:backstop" in decode_value(seen.result)


async def test_a_worker_dials_only_the_host_it_was_started_for() -> None:
    dialed: dict[str, int] = {"host": 0, "stranger": 0}

    async def listen(name: str) -> asyncio.Server:
        def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            dialed[name] += 1
            writer.close()

        return await asyncio.start_server(record, "127.0.0.1", 0)

    host, stranger = await listen("host"), await listen("stranger")
    host_address = f"127.0.0.1:{host.sockets[0].getsockname()[1]}"
    stranger_address = f"127.0.0.1:{stranger.sockets[0].getsockname()[1]}"
    run = worker_pb2.RunAgentRequest(host_address=stranger_address, session_id="s", script="shop")
    try:
        async with hand_run_worker("--host-address", host_address) as worker:
            events = [event async for event in worker.RunAgent(run, timeout=60)]
            assert events[-1].finished.error.type == ErrorType.VALIDATION_ERROR
            assert dict(events[-1].finished.error.details) == {"field": "host_address"}
        async with hand_run_worker() as worker:
            events = [event async for event in worker.RunAgent(run, timeout=60)]
            assert "started without --host-address" in events[-1].finished.error.message
    finally:
        host.close()
        stranger.close()
    assert dialed == {"host": 0, "stranger": 0}


def test_the_watchdog_tells_a_closed_stream_from_a_host_that_exited() -> None:
    lost: list[tuple[str, bool]] = []
    alive = Watchdog(60_000, os.getppid(), lambda reason, exited: lost.append((reason, exited)))
    alive.attach()
    alive.detach()
    alive.check()
    assert lost == []  # the host may still be exiting: the worker looks again
    time.sleep(CLOSED_STREAM_GRACE_S)
    alive.check()
    assert lost == [("the host closed the heartbeat stream", False)]
    gone = Watchdog(60_000, os.getppid() + 1_000_000, lambda reason, exited: lost.append((reason, exited)))
    gone.check()
    assert lost[-1][1] is True


def test_removing_the_socket_dir_removes_sockets_only(tmp_path: Path) -> None:
    import socket

    owned = tmp_path / "owned"
    owned.mkdir()
    for name in ("w1.sock", "w2.sock"):
        with socket.socket(socket.AF_UNIX) as bound:
            bound.bind(str(owned / name))
    remove_socket_dir(str(owned / "w1.sock"))
    assert not owned.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(kept / "w1.sock"))
    remove_socket_dir(str(kept / "w1.sock"))
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
