"""The Python side of the worker benchmark (bench/workers.ts): one echo tool for the pool."""

from __future__ import annotations

import toolbridge


@toolbridge.tool
async def echo(payload: str) -> str:
    """Returns its argument."""
    return payload
