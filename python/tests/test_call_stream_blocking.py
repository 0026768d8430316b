"""The call stream of the blocking client (SyncToolBridgeClient), against the real host CLI, and
its reader's spin; then the sans-IO HTTP/2 core both clients share, without a host."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from toolbridge import HostProcess, SyncToolBridgeClient, ToolExecutionError
from toolbridge.core.config import TOOL_BRIDGE_CONFIG
from toolbridge.transport import tool_call_request
from toolbridge.transport.blocking_calls import SPIN_BACKOFF, SpinWait, spin_budget
from toolbridge.transport.h2_calls import GoawayFilter

from .conftest import spawn_host


def test_the_sync_client_in_a_thread_pool(host: HostProcess) -> None:
    with SyncToolBridgeClient(host.target) as client:
        client.initialize_session()

        def work(worker: int) -> list[Any]:
            return [client.execute_tool("add", worker, i) for i in range(40)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(work, range(16)))
        assert results == [[worker + i for i in range(40)] for worker in range(16)]
        # Slow and fast calls from several threads at once: each thread gets its own answer.
        with ThreadPoolExecutor(max_workers=4) as pool:
            slow = pool.submit(client.execute_tool, "slow", ms=300, tag="py-sync-slow")
            fast = [pool.submit(client.execute_tool, "add", i, 1) for i in range(20)]
            assert [f.result() for f in fast] == [i + 1 for i in range(20)]
            assert slow.result() == "done"
        client.cleanup()


async def test_the_sync_client_inside_a_running_event_loop(host: HostProcess) -> None:
    # Blocking calls from a coroutine: no event loop of its own, no hop to another thread.
    threads_before = threading.active_count()
    with SyncToolBridgeClient(host.target) as client:
        session = client.initialize_session()
        assert session.session_id == client.session_id
        assert client.execute_tool("add", 2, 3) == 5
        assert [t.name for t in client.list_tools()].count("add") == 1
        assert list(client.stream_tool("count", n=3)) == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert client.execute_batch([{"tool_id": "add", "args": [1, 2]}]) == [3]
        assert client.health_check()
        assert client.get_metrics().tools["add"].calls >= 2
        with pytest.raises(ToolExecutionError):
            client.execute_tool("fail", message="sync boom")
        client.cleanup()
    assert threading.active_count() == threads_before


async def test_the_sync_client_survives_the_host_closing_its_idle_connection() -> None:
    # The host pings every 100 ms and closes a connection whose ping goes 100 ms unanswered;
    # nobody reads an idle blocking connection, so the host closes it between the calls, and
    # the next call must go on a new connection, not onto the closed one.
    host = await spawn_host({"keepalive-time-ms": 100, "keepalive-timeout-ms": 100})
    try:
        with SyncToolBridgeClient(host.target) as client:
            await asyncio.to_thread(client.initialize_session)
            assert await asyncio.to_thread(client.execute_tool, "add", 1, 2) == 3
            calls = client.transport.calls
            assert calls is not None
            idle = calls._socket
            assert idle is not None
            assert await asyncio.to_thread(host_closed, idle, 30.0), "the host kept the idle connection"
            assert await asyncio.to_thread(client.execute_tool, "add", 2, 2) == 4
            assert calls._socket is not None
            assert calls._socket is not idle, "the call went out on the connection the host had closed"
    finally:
        await host.stop()


def host_closed(sock: socket.socket, bound_s: float) -> bool:
    """Waits until the other end closed ``sock`` (POLLRDHUP: seen without reading what it sent)."""
    poll = select.poll()
    poll.register(sock, select.POLLRDHUP)
    return any(event & (select.POLLRDHUP | select.POLLHUP) for _, event in poll.poll(bound_s * 1000))


def test_the_sync_stream_cancels_a_call_its_caller_stops_waiting_for(host: HostProcess) -> None:
    with SyncToolBridgeClient(host.target) as client:
        client.initialize_session()
        calls = client.transport.calls
        assert calls is not None
        # No timeout for the host (the tool's 60 s applies); the caller waits 0.2 s.
        request = tool_call_request(
            client.require_session(), "slow", (), {"ms": 10_000, "tag": "py-sync-gone"}
        )
        with pytest.raises(TimeoutError):
            calls.call(request.SerializeToString(), 0.2)
        recorded: list[dict[str, str]] = []
        for _ in range(400):
            recorded = client.execute_tool("events", tag="py-sync-gone")
            if any(e["event"] == "aborted" for e in recorded):
                break
            threading.Event().wait(0.025)
        assert {"tag": "py-sync-gone", "event": "aborted", "detail": "Cancelled"} in recorded
        assert client.execute_tool("add", 1, 1) == 2


def test_the_blocking_reader_spins_only_while_answers_come_within_its_spin() -> None:
    spin = SpinWait(100e-6)
    ours, theirs = socket.socketpair()
    poll = select.poll()
    poll.register(ours, select.POLLIN)
    with ours, theirs:
        theirs.send(b"x")
        assert spin.wait(poll, None)  # data there already: the read goes ahead without sleeping
        ours.recv(1)
        # Nothing came within the spin: the next waits do not spin, even with data waiting...
        assert not spin.wait(poll, None)
        theirs.send(b"x")
        assert [spin.wait(poll, None) for _ in range(SPIN_BACKOFF)] == [False] * SPIN_BACKOFF
        assert spin.wait(poll, None)  # ...and then it spins again.
        ours.recv(1)
        # A deadline that has passed ends the spin at once (past the test timeout otherwise).
        assert not SpinWait(600.0).wait(poll, 0.0)
        theirs.send(b"x")
        assert not SpinWait(0.0).wait(poll, None)  # a budget of 0 never spins


def test_the_blocking_reader_spins_as_configured_and_never_on_a_single_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert spin_budget() == 0.0
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert spin_budget() == pytest.approx(100e-6)  # the default, TOOL_BRIDGE_CONFIG["blocking_spin_us"]
    monkeypatch.setitem(TOOL_BRIDGE_CONFIG, "blocking_spin_us", 0)
    assert spin_budget() == 0.0
    monkeypatch.setitem(TOOL_BRIDGE_CONFIG, "blocking_spin_us", 250)
    assert spin_budget() == pytest.approx(250e-6)


# -- the wire, without a host ------------------------------------------------------------------


def _frame(kind: int, payload: bytes, stream_id: int = 0) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, 0]) + stream_id.to_bytes(4, "big") + payload


def test_a_graceful_goaway_is_taken_out_of_the_bytes_read_wherever_the_reads_split_them() -> None:
    data_frame = _frame(0x0, b"hello", stream_id=1)
    goaway = _frame(0x7, (1).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    failing = _frame(0x7, (1).to_bytes(4, "big") + (2).to_bytes(4, "big"))
    wire = data_frame + goaway + data_frame + failing
    for size in range(1, len(wire) + 1):
        strip = GoawayFilter()
        passed = b"".join(strip.strip(wire[i : i + size]) for i in range(0, len(wire), size))
        assert passed == data_frame + data_frame + failing, size
        assert strip.seen
