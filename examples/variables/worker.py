"""The Python half of the shared-state example (examples/variables/shared-state.ts starts it).

It attaches to the TypeScript host's session, reads the discount the application set,
prices an order with the host's `calculate` tool, leaves the quote in a variable for the
application, and waits until the application approves it by writing another variable.

    python examples/variables/worker.py --address 127.0.0.1:50051 --session <session id>
"""

from __future__ import annotations

import argparse
import asyncio

from toolbridge import ConstraintViolationError, SessionContext, ToolBridgeClient


def say(text: str) -> None:
    print(f"  python ▸ {text}", flush=True)


async def main(address: str, session_id: str) -> None:
    async with ToolBridgeClient(address) as client:
        await client.initialize_session(session_id)
        async with SessionContext(client) as session:
            # Watch for the approval before writing the quote, so it cannot be missed.
            async with session.watch(["approved"]) as approvals:
                rate = await session.get_variable("discount_rate")
                say(f"read discount_rate = {rate} (set by the TypeScript application)")
                total = await session.execute_tool("calculate", expression=f"3 * 14.50 * (1 - {rate})")
                try:
                    await session.set_variable("discount_rate", 0.9)
                except ConstraintViolationError as error:
                    say(f"raising discount_rate to 0.9 was refused: {error.message}")
                quote = {"items": 3, "unit_price": 14.5, "discount_rate": rate, "total": total}
                say(f"writing quote = {quote}")
                await session.set_variable("quote", quote, tags={"by": "pricing-worker"})
                async for update in approvals:
                    if update.kind == "session_ended":
                        say("the session ended before an approval")
                        return
                    if update.kind == "set" and update.value is True:
                        assert update.variable is not None
                        say(f"saw approved = True (written by {update.variable.updated_by}); done")
                        return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--session", required=True)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.address, arguments.session))
