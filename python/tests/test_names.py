"""One name per concept, durations in milliseconds, and the names the original guide gave still
accepted where users may know them (docs/configuration.md, "Client settings")."""

from __future__ import annotations

import asyncio

import pytest

from toolbridge import (
    GRPC_CONFIG,
    TOOL_BRIDGE_CONFIG,
    CachedSessionContext,
    GracefulShutdown,
    SessionContext,
    SyncToolBridgeClient,
    ToolBridgeClient,
)
from toolbridge.transport import channel_options
from toolbridge.transport.channel import message_limit

MIB = 1024 * 1024
# Nothing listens here; a client dials only when it makes a call.
NOWHERE = "127.0.0.1:9"


def test_the_largest_message_is_max_message_bytes_or_the_guides_max_message_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert message_limit() == 10 * MIB
    assert ("grpc.max_send_message_length", 10 * MIB) in channel_options()
    monkeypatch.setitem(GRPC_CONFIG, "max_message_bytes", 4 * MIB)
    assert message_limit() == 4 * MIB
    monkeypatch.setitem(GRPC_CONFIG, "max_message_length", 2 * MIB)
    assert message_limit() == 2 * MIB  # the guide's name wins when set
    assert ("grpc.max_receive_message_length", 2 * MIB) in channel_options()
    assert message_limit(MIB) == MIB  # the client's own max_message_bytes= over both


async def test_calls_per_stream_is_max_calls_per_stream_or_the_guides_max_concurrent_rpcs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def in_flight(blocking: bool, max_calls_per_stream: int | None = None) -> int:
        """The calls a new client lets into flight on its call stream."""
        if blocking:
            with SyncToolBridgeClient(NOWHERE, max_calls_per_stream=max_calls_per_stream) as client:
                assert client.transport.calls is not None
                return client.transport.calls.max_in_flight
        async with ToolBridgeClient(NOWHERE, max_calls_per_stream=max_calls_per_stream) as aio_client:
            assert aio_client.transport.calls is not None
            return aio_client.transport.calls.max_in_flight

    for blocking in (False, True):
        assert await in_flight(blocking) == 100
        assert await in_flight(blocking, max_calls_per_stream=3) == 3
    monkeypatch.setitem(GRPC_CONFIG, "max_calls_per_stream", 50)
    assert await in_flight(True) == 50
    monkeypatch.setitem(GRPC_CONFIG, "max_concurrent_rpcs", 7)
    assert await in_flight(False) == 7
    assert await in_flight(True, max_calls_per_stream=3) == 3


async def test_the_tool_cache_keeps_results_cache_ttl_ms_or_the_guides_cache_ttl_seconds(
    client: ToolBridgeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cachetools counts in seconds.
    assert CachedSessionContext(client).results.ttl == 300.0
    assert CachedSessionContext(client, ttl_ms=250).results.ttl == 0.25
    monkeypatch.setitem(TOOL_BRIDGE_CONFIG, "cache_ttl_ms", 1_500)
    assert CachedSessionContext(client).results.ttl == 1.5
    monkeypatch.setitem(TOOL_BRIDGE_CONFIG, "cache_ttl_seconds", 60)
    assert CachedSessionContext(client).results.ttl == 60.0


async def test_a_variables_tags_or_the_guides_metadata(client: ToolBridgeClient) -> None:
    async with SessionContext(client, cache=False) as session:
        assert (await session.set_variable("labelled", 1, {"by": "tags"})).tags == {"by": "tags"}
        info = await session.set_variable("labelled_too", 1, metadata={"by": "metadata"})
        assert info.tags == {"by": "metadata"}
        assert (await session.get_variable_info("labelled_too")).tags == {"by": "metadata"}
        with pytest.raises(TypeError, match="not both"):
            await session.set_variable("labelled", 2, tags={"a": "b"}, metadata={"a": "b"})


async def test_graceful_shutdown_tracks_calls_under_the_guides_name_too() -> None:
    shutdown = GracefulShutdown()
    assert await shutdown.execute_with_tracking(asyncio.sleep(0, "done")) == "done"
    assert await shutdown.shutdown(timeout_ms=0) == 0
