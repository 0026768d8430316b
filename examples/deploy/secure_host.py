"""A host with TLS and bearer tokens, and Python clients using them (docs/deploying.md).

    make demo-deploy          # or: .venv/bin/python examples/deploy/secure_host.py

Makes what an operator provides (a CA and a certificate for the host, with ``openssl``, and
a tokens file) in a temporary directory, starts the host CLI serving the example shop tools
with ``--tls-cert``, ``--tls-key`` and ``--auth-tokens-file`` on 127.0.0.1, and then:

- a client with the CA and alice's token creates a session and calls a tool;
- a client without a token is refused (UNAUTHENTICATED);
- a client with bob's token cannot see alice's session (SessionNotFound).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
from pathlib import Path

from toolbridge import SessionError, TlsConfig, ToolBridgeClient, ToolCommunicationError, launch_host

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOP_TOOLS = REPO_ROOT / "examples" / "tools" / "shop-tools.ts"


def openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def make_certificates(directory: Path) -> None:
    """A CA, and a certificate it signed for the host's names (here 127.0.0.1 and localhost)."""
    openssl(
        directory,
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"),
        *("-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=example CA"),
    )
    openssl(
        directory,
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "host.key", "-out", "host.csr"),
        *("-subj", "/CN=localhost"),
    )
    (directory / "host.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(
        directory,
        *("x509", "-req", "-in", "host.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"),
        *("-days", "30", "-out", "host.crt", "-extfile", "host.ext"),
    )


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="toolbridge-deploy-") as name:
        directory = Path(name)
        make_certificates(directory)
        alice, bob = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        tokens = directory / "tokens"
        tokens.write_text(f"# <token> <principal>, one client per line\n{alice} alice\n{bob} bob\n")
        tokens.chmod(0o600)
        flags: dict[str, str | int] = {
            # TCP on loopback, as a deployed host would listen (the certificate names 127.0.0.1).
            "host": "127.0.0.1",
            "port": 0,
            "tls-cert": str(directory / "host.crt"),
            "tls-key": str(directory / "host.key"),
            "auth-tokens-file": str(tokens),
        }
        print("host      TLS (example CA), bearer tokens for alice and bob")
        async with launch_host([SHOP_TOOLS], flags, cwd=REPO_ROOT) as host:
            tls = TlsConfig.from_files(ca=directory / "ca.crt")
            async with ToolBridgeClient(host.target, tls=tls, token=alice) as client:
                session = await client.initialize_session()
                total = await client.execute_tool("calculate", expression="3 * 14.50 + 12")
                owner = (await client.session_info()).owner
                print(f"alice     session owned by {owner!r}: calculate(3 * 14.50 + 12) = {total}")

                async with ToolBridgeClient(host.target, tls=tls) as anonymous:
                    try:
                        await anonymous.initialize_session()
                    except ToolCommunicationError as error:
                        print(f"no token  refused: {error.code.name}")

                async with ToolBridgeClient(host.target, tls=tls, token=bob) as other:
                    try:
                        await other.initialize_session(session.session_id)
                    except SessionError as error:
                        print(f"bob       alice's session: {error.type}")
                await client.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
