"""A Python program calling the example shop's TypeScript tools over toolbridge.

Runs the host itself (examples/tools/shop-tools.ts on an ephemeral loopback port)
unless TOOLBRIDGE_ADDRESS points at one that is already serving those tools.

    make demo                      # or: .venv/bin/python examples/python/shop_client.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from toolbridge import ToolBridgeClient, ToolExecutionError, launch_host

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOP_TOOLS = REPO_ROOT / "examples" / "tools" / "shop-tools.ts"


@contextlib.asynccontextmanager
async def host_address() -> AsyncIterator[str]:
    if address := os.environ.get("TOOLBRIDGE_ADDRESS"):
        yield address
        return
    print(f"starting the TypeScript host with {SHOP_TOOLS.relative_to(REPO_ROOT)} ...", flush=True)
    async with launch_host([SHOP_TOOLS], cwd=REPO_ROOT) as host:
        yield host.target


async def main() -> None:
    async with host_address() as address, ToolBridgeClient(address) as client:
        session = await client.initialize_session(metadata={"example": "shop_client"})
        print(f"session {session.session_id} on {address}: {session.tool_count} tools")
        for spec in await client.list_tools():
            params = ", ".join(f"{p.name}: {p.type}" for p in spec.parameters)
            streaming = "  [streaming]" if spec.streaming else ""
            print(f"  {spec.name}({params}){streaming}\n      {spec.description}")

        expression = "(19.99 * 3 + 4.5) * 0.9"
        total = await client.execute_tool("calculate", expression)
        print(f"\ncalculate({expression!r}) = {total}")

        print("\nsearch_docs('how long do refunds take'):")
        for hit in await client.execute_tool("search_docs", query="how long do refunds take", limit=2):
            print(f"  [{hit['score']:.3f}] {hit['id']}: {hit['snippet']}")

        print("\nindex_corpus (streaming):")
        async for progress in client.stream_tool("index_corpus", delay_ms=100):
            if progress["stage"] == "indexing":
                print(f"  {progress['percent']:3d}%  indexed {progress['doc']}")
            else:
                print(f"  done: {progress['documents']} documents, {progress['distinct_terms']} terms")

        try:
            await client.execute_tool("read_doc", doc_id="pricing")
        except ToolExecutionError as error:
            print(f"\nread_doc('pricing') failed as expected: {error.type}: {error.reason}")

        await client.cleanup()
        print("\nsession cleaned up")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
