"""Variable watches and the end of a session's variables, from Python against the real host, with
its TypeScript side in the loop (testdata/tools/variable-tools.ts acts as the application)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from toolbridge import (
    HostProcess,
    SessionContext,
    SessionError,
    ToolBridgeClient,
    VariableUpdate,
)
from toolbridge.v1 import toolbridge_pb2 as pb

from .conftest import spawn_host, wait_for
from .test_variables import attach


async def collect(watch: AsyncIterator[VariableUpdate], count: int) -> list[VariableUpdate]:
    updates: list[VariableUpdate] = []
    async with asyncio.timeout(10):
        async for update in watch:
            updates.append(update)
            if len(updates) == count:
                break
    return updates


async def test_watch_delivers_every_update_in_order_to_a_python_and_a_typescript_watcher(
    ctx: SessionContext, client: ToolBridgeClient, host: HostProcess
) -> None:
    other = await attach(host, client.require_session())
    try:
        await ctx.set_variable("w.a", 0)
        async with ctx.watch(["w.a", "w.b"], include_initial=True) as py_watch:
            host_watch = await client.execute_tool("var_watch_start", names=["w.a", "w.b"])
            writers = [SessionContext(client, cache=False), SessionContext(other, cache=False)]

            async def write(worker: int) -> None:
                for i in range(15):
                    await writers[worker].set_variable(f"w.{'ab'[i % 2]}", worker * 100 + i)

            await asyncio.gather(write(0), write(1))
            await ctx.set_variable("w.ignored", "not watched")
            await ctx.delete_variable("w.b")
            await client.execute_tool("var_write", name="w.a", value="from typescript")
            updates = await collect(py_watch, 1 + 30 + 2)

        assert updates[0].kind == "initial"
        assert (updates[0].name, updates[0].value) == ("w.a", 0)
        assert [u.kind for u in updates[1:]] == ["set"] * 30 + ["deleted", "set"]
        assert all(u.name in ("w.a", "w.b") for u in updates)
        for name in ("w.a", "w.b"):
            versions = [u.version for u in updates if u.name == name]
            assert versions == sorted(versions)
            assert len(set(versions)) == len(versions)
        # Each writer's own writes arrive in the order it made them.
        for worker in (0, 1):
            mine = [
                u.value
                for u in updates
                if u.kind == "set" and isinstance(u.value, int) and u.value // 100 == worker
            ]
            assert mine == [worker * 100 + i for i in range(15)]
        assert updates[-1].value == "from typescript"
        assert updates[-1].variable is not None
        assert updates[-1].variable.updated_by == "typescript"

        # The TypeScript watcher saw the same committed updates, in the same order.
        python_view = [(u.kind, u.name, u.version, u.value) for u in updates[1:]]

        async def host_caught_up() -> bool:
            seen = await client.execute_tool("var_watch_updates", id=host_watch)
            return len(seen["updates"]) >= len(python_view)

        await wait_for(host_caught_up, 5.0, "the TypeScript watcher")
        seen = await client.execute_tool("var_watch_updates", id=host_watch)
        host_view = [(u["kind"], u["name"], u["version"], u["value"]) for u in seen["updates"]]
        assert host_view == python_view
    finally:
        await other.close()


async def test_variables_vanish_with_their_session_on_cleanup(host: HostProcess) -> None:
    async with ToolBridgeClient(host.target) as owner:
        session_id = (await owner.initialize_session()).session_id
        await SessionContext(owner, cache=False).set_variable("doomed", [1, 2, 3])
        watcher = await attach(host, session_id)
        try:
            async with SessionContext(watcher).watch() as watch:
                await owner.cleanup()
                updates = await collect(watch, 1)
                assert [(u.kind, u.reason) for u in updates] == [("session_ended", "cleanup")]
                assert [u async for u in watch] == []  # nothing follows the end
            with pytest.raises(SessionError) as caught:
                await SessionContext(watcher, cache=False).get_variable("doomed")
            assert caught.value.type == "SessionNotFound"
            await watcher.initialize_session(session_id)  # the same id starts empty
            assert await SessionContext(watcher, cache=False).list_variables() == []
        finally:
            await watcher.cleanup()
            await watcher.close()


async def test_a_watch_starts_with_ready_and_ends_with_session_ended_that_is_no_error(
    host: HostProcess,
) -> None:
    """On the wire (the raw stub): READY first, then initial values and changes; the session's
    end is a normal update. The client takes READY as ready() and does not yield it."""
    async with ToolBridgeClient(host.target) as owner:
        session_id = (await owner.initialize_session()).session_id
        await SessionContext(owner, cache=False).set_variable("w.a", 1)
        watcher = await attach(host, session_id)
        try:
            request = pb.WatchVariablesRequest(session_id=session_id, include_initial_values=True)
            call = owner.transport.stub.WatchSessionVariables(request)

            async def next_update() -> tuple[int, str, str, str]:
                message = await call.read()
                assert isinstance(message, pb.VariableUpdate)
                error = message.error.type if message.HasField("error") else ""
                return (message.kind, message.variable_name, error, message.end_reason)

            assert await next_update() == (pb.VARIABLE_UPDATE_KIND_READY, "", "", "")
            assert await next_update() == (pb.VARIABLE_UPDATE_KIND_INITIAL, "w.a", "", "")
            await SessionContext(owner, cache=False).set_variable("w.a", 2)
            assert await next_update() == (pb.VARIABLE_UPDATE_KIND_SET, "w.a", "", "")

            watch = SessionContext(watcher).watch(include_initial=True)
            await watch.ready()
            await owner.cleanup()
            assert await next_update() == (pb.VARIABLE_UPDATE_KIND_SESSION_ENDED, "", "", "cleanup")
            assert not isinstance(await call.read(), pb.VariableUpdate)  # grpc.aio.EOF: the stream ended
            assert [(u.kind, u.name, u.reason) async for u in watch] == [
                ("initial", "w.a", ""),
                ("session_ended", "", "cleanup"),
            ]

            # A watch that fails sends its error instead of READY.
            failed = owner.transport.stub.WatchSessionVariables(
                pb.WatchVariablesRequest(session_id=session_id)
            )
            first = await failed.read()
            assert isinstance(first, pb.VariableUpdate)
            assert (first.kind, first.error.type) == (pb.VARIABLE_UPDATE_KIND_UNSPECIFIED, "SessionNotFound")
            assert not isinstance(await failed.read(), pb.VariableUpdate)
            with pytest.raises(SessionError):
                await SessionContext(watcher).watch().ready()
        finally:
            await watcher.close()


async def test_variables_vanish_with_their_session_on_expiry() -> None:
    host = await spawn_host({"session-timeout-ms": 500, "sweep-interval-ms": 50})
    try:
        async with ToolBridgeClient(host.target) as client:
            await client.initialize_session()
            context = SessionContext(client)
            await context.set_variable("short_lived", "x")
            async with context.watch(include_initial=True) as watch:
                updates = await collect(watch, 2)
            assert [(u.kind, u.name) for u in updates] == [("initial", "short_lived"), ("session_ended", "")]
            assert updates[1].reason == "expired"
            with pytest.raises(SessionError):
                await context.get_variable("short_lived")
            await context.close()
    finally:
        assert await host.stop() == 0, host.output()
