"""A warm Python worker: ``python -m toolbridge.worker --socket PATH --module my_tools``.

The host starts it (``--workers N --worker-module my_tools``), but it runs by hand too. It
imports the modules, serves their ``@toolbridge.tool`` functions and DSPy agent runs over the
ToolBridgeWorker service on a Unix domain socket (or ``--port 0``: an ephemeral loopback TCP
port), and prints one line on stdout once it accepts calls:

    toolbridge worker ready unix:/tmp/toolbridge-workers-x/w1.sock pid=4242 tools=summarize,count

Agent runs attach to ``--host-address``, the host the worker was started for, and to no
other address. Exit status: 0 stopped by SIGTERM/SIGINT, 2 bad usage or a module that cannot
be loaded, 3 the host is gone (see ``--heartbeat-timeout-ms``).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import grpc

from toolbridge.tracing import start_from_environment
from toolbridge.v1 import worker_pb2_grpc
from toolbridge.worker.agents import AgentRuntime
from toolbridge.worker.service import WorkerService
from toolbridge.worker.tools import WorkerTool, tools_of
from toolbridge.worker.watchdog import Watchdog, exit_with_group, remove_socket_dir

EXIT_OK, EXIT_USAGE = 0, 2
READY = "toolbridge worker ready"


class UsageError(Exception):
    """Bad command-line input or a module that cannot be served; the message says why."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m toolbridge.worker",
        description="Serve the @toolbridge.tool functions of Python modules, and DSPy agents, to a host.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="listen on this Unix domain socket path")
    where.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT instead (0 picks a free port)")
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        help="a module to import, by name or .py path (repeatable, or comma-separated)",
    )
    parser.add_argument(
        "--heartbeat-timeout-ms",
        type=int,
        default=10_000,
        help="exit when the host sends no heartbeat for this long (default 10000; 0 never)",
    )
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the host) exits")
    parser.add_argument(
        "--host-address",
        help="the host agent runs attach to (its token comes in TOOLBRIDGE_TOKEN); no other address "
        "is ever dialed, and without it the worker runs no agents",
    )
    parser.add_argument(
        "--remove-socket-dir",
        action="store_true",
        help="when the --parent-pid process has exited, remove the sockets in --socket's directory "
        "and the directory (the host's private one)",
    )
    parser.add_argument(
        "--preload-agents", action="store_true", help="import DSPy once started, so agent runs start at once"
    )
    parser.add_argument("--threads", type=int, default=64, help="threads for sync tools (default 64)")
    parser.add_argument("--max-message-bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--expose-stack-traces", action="store_true", help="send tracebacks to callers")
    args = parser.parse_args(argv)
    if args.remove_socket_dir and (args.socket is None or args.parent_pid is None):
        parser.error("--remove-socket-dir needs --socket and --parent-pid")
    return args


def load_tools(module_names: Sequence[str]) -> tuple[list[str], dict[str, WorkerTool]]:
    """Imports the modules and collects their tools; two tools of one name are a usage error."""
    names = [name.strip() for item in module_names for name in item.split(",") if name.strip()]
    if not names:
        raise UsageError("no --module given: name the modules whose @toolbridge.tool functions to serve")
    # Modules are found like `python -c "import m"` run from the working directory would find them.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    tools: dict[str, WorkerTool] = {}
    for name in names:
        try:
            module = import_module(name)
        except Exception as error:
            raise UsageError(f"cannot import module {name!r}: {type(error).__name__}: {error}") from error
        for tool in tools_of(module):
            other = tools.get(tool.name)
            if other is not None and other is not tool:
                raise UsageError(
                    f"two tools named {tool.name!r}: in {other.fn.__module__} and {tool.fn.__module__}; "
                    "pass name= to @toolbridge.tool to tell them apart"
                )
            tools[tool.name] = tool
    return names, tools


def import_module(name: str) -> ModuleType:
    """A module by dotted name, or by file path (``tools/my_tools.py``: its directory joins sys.path)."""
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = Path(name).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    return importlib.import_module(path.stem)


async def serve(args: argparse.Namespace) -> int:
    # Before the tools' modules load, so that what they instrument finds the tracer provider.
    stop_tracing = start_from_environment("toolbridge-worker")
    modules, tools = load_tools(args.module)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(args.threads, "toolbridge-tool"))
    watchdog = Watchdog(args.heartbeat_timeout_ms or 2**31, args.parent_pid, _on_host_lost(args))
    agents = AgentRuntime(args.host_address)
    service = WorkerService(tools, modules, watchdog, agents, expose_stacktraces=args.expose_stack_traces)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", args.max_message_bytes),
            ("grpc.max_send_message_length", args.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    worker_pb2_grpc.add_ToolBridgeWorkerServicer_to_server(service, server)
    if args.socket is not None:
        address = f"unix:{args.socket}"
        server.add_insecure_port(address)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
        address = f"127.0.0.1:{port}"
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watching = asyncio.create_task(watchdog.run())
    print(f"{READY} {address} pid={os.getpid()} tools={','.join(tools)}", flush=True)
    if args.preload_agents:
        agents.preload()
    await stop.wait()
    watching.cancel()
    await server.stop(grace=2)
    if stop_tracing is not None:
        await asyncio.to_thread(stop_tracing)  # the spans not exported yet
    return EXIT_OK


def _on_host_lost(args: argparse.Namespace) -> Callable[[str, bool], None]:
    def lost(reason: str, host_exited: bool) -> None:
        if host_exited and args.remove_socket_dir:
            remove_socket_dir(args.socket)
        exit_with_group(reason)

    return lost


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
