"""Run a DSPy ReAct agent over a session's tools: ``python -m toolbridge.agent --help``.

The TypeScript host (or a user) launches this with a host address and a session id:

    python -m toolbridge.agent --address 127.0.0.1:50051 --session S \\
        --signature "question -> answer" --tools search_docs,calculate --question "..."
    python -m toolbridge.agent --address ... --session S --agent react_1a2b3c4d --question "..."

The LM is the one ``--lm-factory module:function`` builds (your own ``dspy.BaseLM``), else
``--lm`` or ``$TOOLBRIDGE_LM`` (any model string DSPy accepts, e.g. ``openai/gpt-4o-mini``;
the provider's API key comes from its usual environment variable), else the scripted
DummyLM named by ``--script``. Progress goes to stderr; stdout gets one
JSON line with the result, or with ``--events`` one JSON line per step and then the result
(``toolbridge.agent.events`` describes them).

Exit status: 0 the run succeeded, 1 it failed (recorded as failed), 2 bad usage or agent
definition, 3 the host or session is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from toolbridge.agent.events import created_record, print_result, progress_printer, to_json
from toolbridge.agent.records import AgentRun, ProgressEvent
from toolbridge.core.errors import SessionError, ToolBridgeError, ToolCommunicationError
from toolbridge.core.tracing import continued
from toolbridge.tracing import instrument_dspy, start_from_environment
from toolbridge.transport.credentials import (
    TLS_CA_ENV,
    TLS_CERT_ENV,
    TLS_KEY_ENV,
    TLS_SERVER_NAME_ENV,
    TOKEN_ENV,
    TlsConfig,
    credentials_from_env,
)

LM_ENV = "TOOLBRIDGE_LM"

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad command-line input; the message says how to fix it."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m toolbridge.agent",
        description="Run a DSPy ReAct agent over the tools of a toolbridge session.",
        epilog=f"The LM is --lm-factory's, else --lm, else ${LM_ENV}, else the scripted DummyLM of --script. "
        f"A host that authenticates callers takes the bearer token in ${TOKEN_ENV} "
        "(never on the command line).",
    )
    parser.add_argument("--address", required=True, help="the host, HOST:PORT")
    parser.add_argument("--session", required=True, help="the session to attach to (it must exist)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--agent", help="run this stored agent (see create_react_agent)")
    which.add_argument(
        "--signature", help="define a new agent with this DSPy signature (default: 'question -> answer')"
    )
    parser.add_argument("--tools", help="comma-separated tool names for a new agent (default: all)")
    parser.add_argument("--max-iters", type=int, default=5, help="most ReAct steps for a new agent")
    parser.add_argument("--instructions", help="instructions for a new agent")
    parser.add_argument("--create-only", action="store_true", help="store the new agent, print its id, stop")
    parser.add_argument("--question", help="the 'question' input")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=TEXT", help="a text input")
    parser.add_argument(
        "--input-json", action="append", default=[], metavar="NAME=JSON", help="an input given as JSON"
    )
    lm = parser.add_mutually_exclusive_group()
    lm.add_argument("--lm", help=f"DSPy model string, e.g. openai/gpt-4o-mini (default: ${LM_ENV})")
    lm.add_argument(
        "--lm-factory",
        metavar="MODULE:FUNCTION",
        help="your own LM: a function returning a dspy.BaseLM (imported from the working dir or PYTHONPATH)",
    )
    parser.add_argument(
        "--script", help="when no LM is named: a scripted DummyLM, by name ('shop') or a JSON file of turns"
    )
    parser.add_argument("--tls-ca", help=f"PEM CA bundle of the host's TLS certificate (or ${TLS_CA_ENV})")
    parser.add_argument(
        "--tls-cert", help=f"PEM client certificate for a host requiring one (or ${TLS_CERT_ENV})"
    )
    parser.add_argument("--tls-key", help=f"PEM key of --tls-cert (or ${TLS_KEY_ENV})")
    parser.add_argument(
        "--tls-server-name",
        help=f"the name to check the host's certificate against (or ${TLS_SERVER_NAME_ENV})",
    )
    parser.add_argument("--events", action="store_true", help="print every step on stdout as a JSON line")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser.parse_args(argv)


def parse_inputs(args: argparse.Namespace) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if args.question is not None:
        inputs["question"] = args.question
    for item in args.input:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--input expects NAME=TEXT, got {item!r}")
        inputs[name] = text
    for item in args.input_json:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--input-json expects NAME=JSON, got {item!r}")
        try:
            inputs[name] = json.loads(text)
        except ValueError as error:
            raise UsageError(f"--input-json {name}: not JSON ({error})") from None
    return inputs


def choose_lm(args: argparse.Namespace) -> Any:
    """``--lm-factory``'s LM, else ``dspy.LM(--lm or $TOOLBRIDGE_LM)``, else the ``--script`` DummyLM."""
    from toolbridge.agent.lm import choose_lm as choose

    return choose(model=args.lm or os.environ.get(LM_ENV), factory=args.lm_factory, script=args.script)


# -- main ----------------------------------------------------------------------------------------------


def credentials(args: argparse.Namespace) -> tuple[TlsConfig | None, str | None]:
    """TLS from the --tls-* flags, else from the environment; the token from the environment."""
    tls, token = credentials_from_env()
    if args.tls_ca or args.tls_cert:
        if bool(args.tls_cert) != bool(args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together")
        tls = TlsConfig.from_files(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)
    return tls, token


async def run(args: argparse.Namespace) -> int:
    from toolbridge.agent.model import AgentDefinition
    from toolbridge.agent.records import AgentRunError
    from toolbridge.agent.session import SessionAgents
    from toolbridge.dspy import GRPCToolBridge

    instrument_dspy()
    inputs = parse_inputs(args)
    lm = None if args.create_only else choose_lm(args)
    printer = progress_printer(None if args.quiet else sys.stderr, sys.stdout if args.events else None)
    finished: list[AgentRun] = []

    def show(event: ProgressEvent) -> None:
        printer(event)
        if event.kind == "run_finished" and event.run is not None:
            finished.append(event.run)

    tls, token = credentials(args)
    bridge = GRPCToolBridge(args.address, tls=tls, token=token)
    agents = SessionAgents(bridge)
    try:
        await bridge.initialize(args.session)
        if bridge.session is not None and bridge.session.created:
            # The session is the host's to create: a fresh one has none of its session tools or agents.
            await bridge.cleanup()
            raise SessionError(f"session {args.session} does not exist on {args.address}; create it first")
        if args.agent:
            definition = await agents.store.load_definition(args.agent)
        else:
            names = [n.strip() for n in args.tools.split(",") if n.strip()] if args.tools else None
            definition = AgentDefinition.create(
                args.signature or "question -> answer",
                names if names is not None else list(bridge.specs),
                args.max_iters,
                instructions=args.instructions,
            )
            bridge.get_dspy_tools(definition.tool_names)
            agents.build_react_agent(definition)
            # Stored before it runs, so its runs can be repeated by id from any worker (--agent).
            await agents.store.save_definition(definition)
            if args.create_only:
                print(to_json(created_record(definition.agent_id)), flush=True)
                return EXIT_OK
        try:
            result = await agents.run_definition(definition, inputs, lm=lm, on_progress=show)
        except AgentRunError as error:
            result = error.run
        except asyncio.CancelledError:
            # SIGTERM: the run is recorded as failed; say so before exiting.
            if finished:
                print_result(finished[-1])
            raise
        print_result(result)
        if result.status != "succeeded":
            print(f"error: the run failed: {result.error}", file=sys.stderr)
            return EXIT_RUN_FAILED
        return EXIT_OK
    finally:
        await bridge.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_tracing = start_from_environment("toolbridge-agent")
    try:
        return asyncio.run(_main_task(args))
    except KeyboardInterrupt:
        return 130
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ToolCommunicationError, SessionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ToolBridgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if stop_tracing is not None:
            stop_tracing()  # the spans not exported yet


async def _main_task(args: argparse.Namespace) -> int:
    # SIGTERM (what a host sends to stop a worker) cancels the run, which records it as failed.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None and hasattr(signal, "SIGTERM"):
        loop.add_signal_handler(signal.SIGTERM, task.cancel, "stopped by SIGTERM")
    try:
        # The run continues the trace of whoever started this process (TRACEPARENT, when traced).
        with continued((key.lower(), value) for key, value in os.environ.items()):
            return await run(args)
    except asyncio.CancelledError:
        print("error: stopped by SIGTERM", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
