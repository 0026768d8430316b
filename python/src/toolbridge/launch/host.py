"""Starts a toolbridge host (the Node CLI) as a child process, for scripts, examples and tests.

async with launch_host(["tools.ts"]) as host:            # or cli=["npx", "toolbridge"]
    client = ToolBridgeClient(host.target)               # unix:/tmp/toolbridge-.../host.sock

The CLI is found as ``find_cli`` says: ``$TOOLBRIDGE_CLI``, a checkout's compiled CLI, the
``toolbridge`` that npm installed into a ``node_modules/.bin`` up from the working
directory, or ``toolbridge`` on PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_READY = re.compile(r"serving on (\S+) with")
_MCP = re.compile(r"^toolbridge mcp on (\S+)")
_METRICS = re.compile(r"^toolbridge metrics on (\S+)")


class HostLaunchError(RuntimeError):
    """The host process exited or stayed silent instead of serving."""


@dataclass
class HostProcess:
    """A running host: ``target`` is what a client dials; ``output()`` is its log so far.

    ``mcp_url`` is its MCP endpoint when started with an ``mcp-port`` flag (MCP clients' URL),
    ``metrics_url`` its Prometheus endpoint with a ``metrics-port`` flag.
    """

    target: str
    process: asyncio.subprocess.Process
    _stderr: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    # The temporary directory of the host's Unix socket, removed once the host has stopped.
    _socket_dir: str | None = None
    mcp_url: str | None = None
    metrics_url: str | None = None

    def output(self) -> str:
        return "".join(self._stderr)

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        if self.process.returncode is None:
            # os.kill, not Process.send_signal: the latter polls (reaps) a child that just exited,
            # and asyncio's child watcher then reports exit code 255 instead of the real one.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, sig)

    async def stop(self, sig: int = signal.SIGTERM, *, timeout_ms: float = 20_000) -> int:
        """Signals the host (SIGTERM: graceful shutdown); returns its exit code, killing it after
        ``timeout_ms``."""
        self.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout_ms / 1000)
        except TimeoutError:
            self.send_signal(signal.SIGKILL)
            code = await self.process.wait()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        return code


def find_cli(start: Path | None = None) -> list[str]:
    """The host CLI: ``$TOOLBRIDGE_CLI``, a checkout's built CLI, npm's ``node_modules/.bin``, or PATH's."""
    if env := os.environ.get("TOOLBRIDGE_CLI"):
        return env.split()
    here = (start or Path.cwd()).resolve()
    for directory in [here, *here.parents, *Path(__file__).resolve().parents]:
        built = directory / "packages" / "server" / "dist" / "cli.js"
        if built.is_file():
            return [shutil.which("node") or "node", str(built)]
        installed = directory / "node_modules" / ".bin" / "toolbridge"
        if installed.is_file():
            return [str(installed)]
    if found := shutil.which("toolbridge"):
        return [found]
    raise HostLaunchError(
        "cannot find the toolbridge host CLI: build it (make build) or set TOOLBRIDGE_CLI to its command"
    )


async def start_host(
    tools: Sequence[str | Path],
    flags: Mapping[str, str | int] | None = None,
    *,
    cli: Sequence[str] | None = None,
    cwd: str | Path | None = None,
    startup_timeout_ms: float = 30_000,
    env: Mapping[str, str] | None = None,
) -> HostProcess:
    """Runs ``toolbridge serve --tools ...`` on a Unix domain socket of its own.

    The socket is ``host.sock`` in a fresh temporary directory (removed when the host stops);
    the fastest way to a host on the same machine. With a ``host`` or ``port`` flag the host
    listens where the flags say instead (a ``port`` alone: on 127.0.0.1). ``env`` adds to (or
    overrides) this process's environment for the host, e.g. ``OTEL_*`` variables.
    """
    command = [*(cli or find_cli()), "serve"]
    for module in tools:
        command += ["--tools", str(module)]
    options: dict[str, str | int] = {"log-level": "warn", **(flags or {})}
    socket_dir = None
    if "host" not in options:
        if "port" in options:
            options["host"] = "127.0.0.1"
        else:
            socket_dir = tempfile.mkdtemp(prefix="toolbridge-")
            options["host"] = f"unix:{socket_dir}/host.sock"
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr: list[str] = []
    stderr_reader = asyncio.create_task(_drain(process.stderr, stderr))
    stdout: list[str] = []
    try:
        target = await asyncio.wait_for(_ready(process.stdout, stdout), startup_timeout_ms / 1000)
    except (TimeoutError, HostLaunchError) as error:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await stderr_reader
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise HostLaunchError(
            f"the host did not start ({error or f'no ready line within {startup_timeout_ms:g} ms'}); "
            f"command: {' '.join(command)}\n{''.join(stderr)}"
        ) from None
    mcp_url = next((match.group(1) for line in stdout if (match := _MCP.match(line))), None)
    metrics_url = next((match.group(1) for line in stdout if (match := _METRICS.match(line))), None)
    stdout_reader = asyncio.create_task(_drain(process.stdout, stdout))
    readers = [stderr_reader, stdout_reader]
    return HostProcess(target, process, stderr, readers, socket_dir, mcp_url, metrics_url)


@contextlib.asynccontextmanager
async def launch_host(
    tools: Sequence[str | Path],
    flags: Mapping[str, str | int] | None = None,
    *,
    cli: Sequence[str] | None = None,
    cwd: str | Path | None = None,
    startup_timeout_ms: float = 30_000,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[HostProcess]:
    """``start_host`` as a context manager that stops the host on exit."""
    host = await start_host(tools, flags, cli=cli, cwd=cwd, startup_timeout_ms=startup_timeout_ms, env=env)
    try:
        yield host
    finally:
        await host.stop()


async def _ready(stream: asyncio.StreamReader, lines: list[str]) -> str:
    while line := (await stream.readline()).decode(errors="replace"):
        lines.append(line)
        if match := _READY.search(line):
            return match.group(1)
    raise HostLaunchError("the host exited before serving")


async def _drain(stream: asyncio.StreamReader, sink: list[str]) -> None:
    while chunk := await stream.read(65536):
        sink.append(chunk.decode(errors="replace"))
