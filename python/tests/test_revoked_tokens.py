"""Revoking a token on a running host: its open streams end, another principal's keep working.

The client keeps one ``Calls`` stream for its whole life, so a token taken out of the
tokens file (and the host sent SIGHUP) must end that stream, the calls running on it and
the token's variable watches, not only refuse the token's next connection.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from toolbridge import HostProcess, ToolBridgeClient, ToolCommunicationError
from toolbridge.client.session_context import SessionContext

from .conftest import spawn_host, wait_for

# Only keeps a broken build from hanging the suite: each wait ends on an event.
GUARD_S = 10.0


def write_tokens(path: Path, tokens: dict[str, str]) -> None:
    path.write_text("".join(f"{token} {principal}\n" for token, principal in tokens.items()))


@pytest.fixture
def tokens() -> dict[str, str]:
    return {"alice": secrets.token_urlsafe(24), "bob": secrets.token_urlsafe(24)}


@pytest.fixture
async def host(tmp_path: Path, tokens: dict[str, str]) -> AsyncIterator[HostProcess]:
    write_tokens(tmp_path / "tokens", {token: name for name, token in tokens.items()})
    process = await spawn_host({"auth-tokens-file": str(tmp_path / "tokens"), "log-level": "info"})
    yield process
    assert await process.stop() == 0, process.output()


async def test_a_revoked_tokens_open_calls_stream_and_watch_end_unauthenticated(
    host: HostProcess, tokens: dict[str, str], tmp_path: Path
) -> None:
    async with (
        ToolBridgeClient(host.target, token=tokens["alice"]) as alice,
        ToolBridgeClient(host.target, token=tokens["bob"]) as bob,
    ):
        await alice.initialize_session()
        await bob.initialize_session()
        # Both clients make their tool calls on their one Calls stream.
        assert alice.transport.calls is not None
        assert bob.transport.calls is not None
        async with (
            SessionContext(alice) as alice_session,
            SessionContext(bob) as bob_session,
            alice_session.watch(["plan"]) as alice_updates,
            bob_session.watch(["plan"]) as bob_updates,
        ):
            # Bob's Calls stream runs a call that would go on for a minute.
            running = asyncio.create_task(bob.execute_tool("slow", ms=60_000, tag="revoked"))

            async def started() -> bool:
                events = await alice.execute_tool("events", tag="revoked")
                return any(event["event"] == "started" for event in events)

            await wait_for(started, GUARD_S)
            bob_next = asyncio.create_task(anext(aiter(bob_updates)))

            write_tokens(tmp_path / "tokens", {tokens["alice"]: "alice"})
            host.send_signal(signal.SIGHUP)

            # The call in flight fails with the stream's status, and its tool was aborted.
            with pytest.raises(ToolCommunicationError) as call_failed:
                await asyncio.wait_for(running, GUARD_S)
            assert call_failed.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert "no longer accepted" in str(call_failed.value), str(call_failed.value)
            with pytest.raises(ToolCommunicationError) as watch_failed:
                await asyncio.wait_for(bob_next, GUARD_S)
            assert watch_failed.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert "open a new stream with valid credentials" in str(watch_failed.value)
            events = await alice.execute_tool("events", tag="revoked")
            assert {"tag": "revoked", "event": "aborted", "detail": "Cancelled"} in events

            # Bob's next call opens a new stream, which the host refuses.
            with pytest.raises(ToolCommunicationError) as refused:
                await bob.execute_tool("add", 1, b=2)
            assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED

            # Alice's stream and watch were re-checked and go on.
            assert await alice.execute_tool("add", 2, b=3) == 5
            await alice_session.set_variable("plan", ["search"])
            update = await asyncio.wait_for(anext(aiter(alice_updates)), GUARD_S)
            assert update.value == ["search"]
    assert "revoked an open stream's credentials" in host.output()
