"""The Python client against a real host with TLS, mTLS and bearer tokens.

Certificates and tokens are made by the test (``openssl`` in a temporary directory): a CA,
a host certificate for 127.0.0.1/localhost, and a client certificate for alice.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from toolbridge import (
    ChannelPool,
    HostProcess,
    SessionError,
    TlsConfig,
    ToolBridgeClient,
    ToolCommunicationError,
    VariableConstraints,
    VariableError,
)
from toolbridge.client.session_context import SessionContext
from toolbridge.transport import credentials_from_env

from .conftest import REPO_ROOT, spawn_host


@dataclass(frozen=True)
class Credentials:
    dir: Path
    alice: str
    bob: str

    def file(self, name: str) -> Path:
        return self.dir / name


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(cwd: Path, name: str, subject: str, extensions: str) -> None:
    _openssl(
        cwd,
        *("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr"),
        *("-subj", subject),
    )
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        cwd,
        *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"),
        *("-days", "1", "-out", f"{name}.crt", "-extfile", f"{name}.ext"),
    )


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    cwd = tmp_path_factory.mktemp("tls")
    _openssl(
        cwd,
        *(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ),
        *("-subj", "/CN=toolbridge python test CA"),
    )
    _issue(
        cwd,
        "host",
        "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    _issue(cwd, "alice", "/O=toolbridge-tests/CN=alice", "extendedKeyUsage=clientAuth\n")
    alice, bob = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    (cwd / "tokens").write_text(f"# test tokens\n{alice} alice\n{bob} bob\n")
    return Credentials(cwd, alice, bob)


@pytest.fixture(scope="module")
async def secured(credentials: Credentials) -> AsyncIterator[HostProcess]:
    """A host serving TLS and requiring tokens."""
    flags: dict[str, str | int] = {
        "tls-cert": str(credentials.file("host.crt")),
        "tls-key": str(credentials.file("host.key")),
        "auth-tokens-file": str(credentials.file("tokens")),
    }
    process = await spawn_host(flags)
    yield process
    assert await process.stop() == 0, process.output()


def tls_for(credentials: Credentials, *, client_certificate: bool = False) -> TlsConfig:
    return TlsConfig.from_files(
        ca=credentials.file("ca.crt"),
        cert=credentials.file("alice.crt") if client_certificate else None,
        key=credentials.file("alice.key") if client_certificate else None,
        server_name="localhost",
    )


async def test_a_client_with_tls_and_a_token_works_as_its_principal(
    secured: HostProcess, credentials: Credentials
) -> None:
    async with ToolBridgeClient(secured.target, tls=tls_for(credentials), token=credentials.alice) as client:
        await client.initialize_session()
        assert await client.execute_tool("add", 2, b=3) == 5
        assert (await client.session_info()).owner == "alice"
        async with SessionContext(client) as session, session.watch(["plan"]) as updates:
            await session.set_variable("plan", ["search"])
            info = await session.get_variable_info("plan")
            # A server stream carries the token too.
            update = await asyncio.wait_for(anext(aiter(updates)), 10)
            assert update.value == ["search"]
        assert (info.created_by, info.updated_by, info.writer_label) == ("alice", "alice", "python")
        await client.cleanup()


@pytest.mark.parametrize("token", [None, "not-a-token-of-this-host", "wrong"])
async def test_a_missing_or_wrong_token_is_unauthenticated(
    secured: HostProcess, credentials: Credentials, token: str | None
) -> None:
    async with ToolBridgeClient(secured.target, tls=tls_for(credentials), token=token) as client:
        with pytest.raises(ToolCommunicationError) as raised:
            await client.initialize_session()
    assert raised.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_plaintext_to_a_tls_host_fails_at_the_transport(
    secured: HostProcess, credentials: Credentials
) -> None:
    async with ToolBridgeClient(secured.target, token=credentials.alice) as client:
        with pytest.raises(ToolCommunicationError) as raised:
            await client.initialize_session()
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


async def test_another_principal_cannot_use_the_session(
    secured: HostProcess, credentials: Credentials
) -> None:
    tls = tls_for(credentials)
    async with (
        ToolBridgeClient(secured.target, tls=tls, token=credentials.alice) as alice,
        ToolBridgeClient(secured.target, tls=tls, token=credentials.bob) as bob,
    ):
        session = await alice.initialize_session()
        with pytest.raises(SessionError) as raised:
            await bob.initialize_session(session.session_id)
        assert raised.value.type == "SessionNotFound"
        await alice.cleanup()


async def test_a_channel_pool_carries_tls_and_token(secured: HostProcess, credentials: Credentials) -> None:
    async with (
        ChannelPool([secured.target], tls=tls_for(credentials), token=credentials.bob) as pool,
        ToolBridgeClient.from_pool(pool) as client,
    ):
        await client.initialize_session()
        assert (await client.session_info()).owner == "bob"
        await client.cleanup()


async def test_the_dspy_bridge_passes_tls_and_token(secured: HostProcess, credentials: Credentials) -> None:
    from toolbridge.dspy import GRPCToolBridge

    bridge = GRPCToolBridge(secured.target, tls=tls_for(credentials), token=credentials.alice)
    await bridge.initialize()
    try:
        tools = bridge.get_dspy_tools(["add"])
        assert await tools[0].acall(a=2, b=5) == 7
        # Sync calls go through the bridge's second client, on its background loop.
        assert await asyncio.to_thread(tools[0], a=1, b=1) == 2
    finally:
        await bridge.cleanup()


async def test_mtls_makes_the_certificate_subject_the_principal(credentials: Credentials) -> None:
    process = await spawn_host(
        {
            "tls-cert": str(credentials.file("host.crt")),
            "tls-key": str(credentials.file("host.key")),
            "tls-client-ca": str(credentials.file("ca.crt")),
        }
    )
    try:
        tls = tls_for(credentials, client_certificate=True)
        async with ToolBridgeClient(process.target, tls=tls) as client:
            await client.initialize_session()
            assert (await client.session_info()).owner == "O=toolbridge-tests,CN=alice"
        async with ToolBridgeClient(process.target, tls=tls_for(credentials)) as anonymous:
            with pytest.raises(ToolCommunicationError):
                await anonymous.initialize_session()
    finally:
        assert await process.stop() == 0, process.output()


def test_credentials_come_from_the_environment_the_host_hands_its_processes(credentials: Credentials) -> None:
    env = {"TOOLBRIDGE_TOKEN": "t0k3n", "TOOLBRIDGE_TLS_CA": str(credentials.file("ca.crt"))}
    tls, token = credentials_from_env(env)
    assert token == "t0k3n"
    assert tls is not None
    assert tls.root_certificates == credentials.file("ca.crt").read_bytes()
    assert credentials_from_env({}) == (None, None)
    with pytest.raises(ValueError, match="needs its key"):
        TlsConfig.from_files(cert=credentials.file("alice.crt"))


async def test_patterns_that_need_backtracking_are_refused_by_the_host(
    secured: HostProcess, credentials: Credentials
) -> None:
    async with ToolBridgeClient(secured.target, tls=tls_for(credentials), token=credentials.alice) as client:
        await client.initialize_session()
        async with SessionContext(client) as session:
            with pytest.raises(VariableError) as raised:
                await session.declare_variable("p", "string", "aa", VariableConstraints(pattern=r"(a)\1"))
            assert raised.value.type == "ValidationError"
            assert "backreferences" in str(raised.value)
            await session.declare_variable("word", "string", "aa", VariableConstraints(pattern="^(a+)+$"))
            with pytest.raises(VariableError) as violated:
                await session.set_variable("word", "a" * 10_000 + "!")
            assert violated.value.type == "ConstraintViolation"
        await client.cleanup()


def test_the_deploying_example_runs() -> None:
    """examples/deploy/secure_host.py, the runnable example of docs/deploying.md, as a user runs it."""
    example = REPO_ROOT / "examples" / "deploy" / "secure_host.py"
    done = subprocess.run(
        [sys.executable, str(example)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "alice     session owned by 'alice': calculate(3 * 14.50 + 12) = 55.5" in done.stdout
    assert "no token  refused: UNAUTHENTICATED" in done.stdout
    assert "bob       alice's session: SessionNotFound" in done.stdout
