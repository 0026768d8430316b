"""Three toolbridge hosts on one Redis (or a Redis Cluster) and a Python client spread over them.

Starts a redis-server, or with ``--store redis-cluster`` a Redis Cluster of three masters, and
three host processes (examples/cluster/order-tools.ts, each with ``--store redis://...`` or
``--store redis+cluster://...``), opens one session, and places orders round robin over the nodes
through a ``ChannelPool``, printing which node served each call and recording each order in
a session variable. Halfway it kills one node with SIGKILL: the call that was on its way is
sent again, under the same request id, to the next node, and the run goes on. At the end
every live node reads the same session state.

    make demo-cluster                        # or: .venv/bin/python examples/cluster/demo.py
    make demo-cluster CLUSTER=redis-cluster  # or: ... examples/cluster/demo.py --store redis-cluster
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import uuid
from pathlib import Path

from toolbridge import (
    ChannelPool,
    SessionContext,
    ToolBridgeClient,
    ToolBridgeError,
    ToolCommunicationError,
    start_host,
)
from toolbridge.launch.redis import launch_redis_cluster, launch_redis_server

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / "examples" / "cluster" / "order-tools.ts"
ORDERS = 12
KILL_AFTER = 5


async def main(store: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        redis = launch_redis_cluster() if store == "redis-cluster" else launch_redis_server()
        url = await stack.enter_async_context(redis)
        print(f"redis     {url}")
        hosts = list(
            await asyncio.gather(*(start_host([TOOLS], {"store": url}, cwd=REPO_ROOT) for _ in range(3)))
        )
        for host in hosts:
            stack.push_async_callback(host.stop)
        pool = await stack.enter_async_context(ChannelPool([host.target for host in hosts]))
        clients = [await stack.enter_async_context(ToolBridgeClient.from_pool(pool)) for _ in hosts]
        session_id = (await clients[0].initialize_session(metadata={"example": "cluster"})).session_id
        names: dict[str, str] = {}
        for client in clients[1:]:
            await client.initialize_session(session_id)
        for client in clients:
            info = await client.execute_tool("node_info")
            names[client.server_address] = info["node"]
            print(f"node      {info['node']} on {client.server_address} (pid {info['pid']})")
        print(f"session   {session_id}, opened through every node\n")

        live = list(clients)
        for number in range(1, ORDERS + 1):
            if number == KILL_AFTER + 1:
                victim = hosts[number % len(hosts)]
                print(f"\n-- killing node {names[victim.target]} ({victim.target}) with SIGKILL --\n")
                victim.send_signal(signal.SIGKILL)
                await victim.process.wait()
            request_id = f"order-{number}-{uuid.uuid4().hex[:8]}"
            client = live[number % len(live)]
            while True:
                try:
                    order = await client.call_tool(
                        "place_order",
                        kwargs={"item": f"item-{number}", "quantity": number},
                        request_id=request_id,
                    )
                    break
                except ToolCommunicationError:
                    # The node is gone: the same request id goes to the next node (a replay if it had run).
                    gone = names[client.server_address]
                    print(f"  order {number:2d}   node {gone} is gone; sending it elsewhere")
                    live.remove(client)
                    client = live[number % len(live)]
            async with SessionContext(client) as session:
                await session.set_variable(f"order_{number:02d}", order["node"])
            print(f"  order {number:2d} → node {order['node']}  ({order['placed_here']} placed there)")

        print()
        for client in live:
            async with SessionContext(client) as session:
                recorded = await session.list_variables("order_")
            print(
                f"node {names[client.server_address]} reads {len(recorded)} orders: "
                + " ".join(str(variable.value)[:4] for variable in recorded)
            )
        missing = ORDERS - len(recorded)
        print(f"\n{ORDERS} orders placed, {missing} lost; every live node reads the same session state")
        if missing:
            raise ToolBridgeError(f"{missing} orders are missing", "InternalError")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--store",
        choices=("redis", "redis-cluster"),
        default="redis",
        help="one redis-server (default), or a Redis Cluster of three masters",
    )
    try:
        asyncio.run(main(parser.parse_args().store))
    except KeyboardInterrupt:
        sys.exit(130)
