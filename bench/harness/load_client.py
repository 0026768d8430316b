"""One load-generating client process of the cluster workload (harness/cluster.py).

    python bench/harness/load_client.py TARGET CALLS IN_FLIGHT

Opens a session on TARGET, warms up, prints ``ready`` and waits for a line on stdin; then
makes CALLS ExecuteTool calls of ``echo`` (10 B), IN_FLIGHT at a time, and prints one JSON
line: the calls made and the wall-clock start and end (time.time(), comparable across
processes); then it waits for another line before it exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from toolbridge import ToolBridgeClient

PAYLOAD = "x" * 10


async def main(target: str, calls: int, in_flight: int) -> None:
    async with ToolBridgeClient(target) as client:
        await client.initialize_session()
        for _ in range(50):
            await client.call_tool("echo", (), {"payload": PAYLOAD})
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        remaining = calls
        done = 0

        async def worker() -> None:
            nonlocal remaining, done
            while remaining > 0:
                remaining -= 1
                if await client.call_tool("echo", (), {"payload": PAYLOAD}) != PAYLOAD:
                    raise SystemExit("echo answered something else")
                done += 1

        started = time.time()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        print(
            json.dumps({"calls": done, "start": started, "end": time.time()}),
            flush=True,
        )
        # Stays until told, so that its CPU time can still be read.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
