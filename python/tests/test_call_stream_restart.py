"""The call stream across a host restart, when nothing read the socket while the old host ended
the stream (the asyncio client's event loop was blocked; the blocking client had no call in
flight): the end sits unread in the socket when the next call comes.

A host restarted on the same address and the same Redis keeps the session, so the first call
after the restart can succeed; it must not be written onto the old host's ended stream (and
fail with the old host's "shutting down"), and a call the old host never read goes to the new
one. The loop is blocked by synchronous waits (for the old host's exit, for the new host's
ready line), so nothing the old host sends is read before the call is made.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import select
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from toolbridge import HostProcess, SyncToolBridgeClient, ToolBridgeClient
from toolbridge.launch.redis import launch_redis_server

from .conftest import CLI, REPO_ROOT, TEST_TOOLS, spawn_host, wait_for
from .test_call_stream import events, wait_for_event

#: Hang guards of the synchronous waits; a host exits and starts well within them.
_EXIT_GUARD_S = 30.0
_START_GUARD_S = 30.0


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    async with launch_redis_server() as url:
        yield url


def exited_blocking(host: HostProcess) -> None:
    """Blocks (the event loop too) until the host process has exited; not reaped, so the
    launcher still gets its exit code."""
    pidfd = os.pidfd_open(host.process.pid)
    try:
        readable = select.poll()
        readable.register(pidfd, select.POLLIN)
        if not readable.poll(_EXIT_GUARD_S * 1000):
            pytest.fail(f"the host did not exit within {_EXIT_GUARD_S} s:\n{host.output()}")
    finally:
        os.close(pidfd)


def serve_blocking(flags: dict[str, str | int], log: Path) -> subprocess.Popen[bytes]:
    """Starts a host with the CLI and blocks (the event loop too) until it serves."""
    command = ["node", str(CLI), "serve", "--tools", str(TEST_TOOLS), "--log-level", "warn"]
    for key, value in flags.items():
        command += [f"--{key}", str(value)]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=stderr)
    assert process.stdout is not None
    readable = select.poll()
    readable.register(process.stdout, select.POLLIN)
    seen = b""
    while b"serving on " not in seen:
        if not readable.poll(_START_GUARD_S * 1000):
            process.kill()
            pytest.fail(f"the new host did not start within {_START_GUARD_S} s: {log.read_text()}")
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            pytest.fail(f"the new host exited before serving: {log.read_text()}")
        seen += chunk
    return process


async def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            await wait_for(lambda: _returned(process), timeout_s=20.0)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


async def _returned(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize("blocking", [False, True], ids=["asyncio", "blocking"])
async def test_the_first_call_after_a_restart_goes_to_the_new_host_though_nothing_read_the_old_end(
    redis_url: str, tmp_path: Path, transport: str, blocking: bool
) -> None:
    # A call written onto the old connection fails over TCP with the old host's "shutting down"
    # (the reported failure; the resend of a call a drained stream never read would rescue it),
    # over a Unix socket at the write itself (the old host closed its end): there only reading
    # the old end before writing saves it.
    where: dict[str, str | int] = (
        {"port": 0} if transport == "tcp" else {"host": f"unix:{tmp_path}/host.sock"}
    )
    old = await spawn_host({"store": redis_url, "shutdown-grace-ms": 2000, **where})
    if transport == "tcp":
        where = {"host": "127.0.0.1", "port": old.target.rsplit(":", 1)[1]}
    flags: dict[str, str | int] = {"store": redis_url, **where}
    new = None
    # The blocking client's calls are made from this coroutine: they block the loop too.
    client = SyncToolBridgeClient(old.target) if blocking else ToolBridgeClient(old.target)
    try:
        await result_of(client.initialize_session())
        assert await result_of(client.execute_tool("add", 1, 2)) == 3
        calls = client.transport.calls
        assert calls is not None
        assert calls.connected
        # From here until the call nothing reads the socket, so the old host's end of the stream
        # (its trailers, GOAWAY and the closed connection) waits unread in the client's socket.
        old.send_signal(signal.SIGTERM)
        exited_blocking(old)
        new = serve_blocking(flags, tmp_path / "new-host.log")
        assert await result_of(client.execute_tool("add", 20, b=22)) == 42
        assert calls.connected
    finally:
        await result_of(client.close())
        await stop(new)
        await old.stop()


async def result_of(value: Any) -> Any:
    """``value``, awaited when it is awaitable: the asyncio client's answer or the blocking one's."""
    return await value if inspect.isawaitable(value) else value


async def test_a_call_the_draining_host_never_read_goes_to_the_new_host(
    redis_url: str, tmp_path: Path
) -> None:
    # One call per stream: while the held call runs, the host reads nothing more from the stream.
    old = await spawn_host(
        {"store": redis_url, "port": 0, "max-calls-per-stream": 1, "shutdown-grace-ms": 5000}
    )
    flags: dict[str, str | int] = {
        "store": redis_url,
        "host": "127.0.0.1",
        "port": old.target.rsplit(":", 1)[1],
    }
    new = None
    release = tmp_path / "release"
    client = ToolBridgeClient(old.target)
    observer = ToolBridgeClient(old.target)
    try:
        await client.initialize_session()
        await observer.initialize_session()
        calls = client.transport.calls
        assert calls is not None
        held = asyncio.create_task(client.execute_tool("wait_for_file", path=str(release), tag="held"))
        await wait_for_event(observer, "held", "started")
        unread = asyncio.create_task(client.execute_tool("slow", ms=0, tag="unread"))

        async def written() -> bool:
            return calls.in_flight == 2

        await wait_for(written)
        await asyncio.sleep(0)  # the flush scheduled with the second call has run: it is at the host
        old.send_signal(signal.SIGTERM)

        async def draining() -> bool:
            return not await observer.health_check(timeout_ms=5_000)

        await wait_for(draining)
        # The loop is blocked from here: the held call finishes, the draining host answers it and
        # ends the stream without reading the second call, and exits; a new host takes its place.
        release.touch()
        exited_blocking(old)
        new = serve_blocking(flags, tmp_path / "new-host.log")
        assert await held == "released"
        assert await unread == "done"
        async with ToolBridgeClient(old.target) as checker:
            await checker.initialize_session()
            assert [event for event, _ in await events(checker, "unread")] == ["started", "finished"]
    finally:
        await client.close()
        await observer.close()
        await stop(new)
        await old.stop()
