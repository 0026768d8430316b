"""Python functions as tools of a toolbridge host, served by warm worker processes.

    import toolbridge

    @toolbridge.tool
    async def summarize(text: str, max_words: int = 30) -> str:
        "Shortens a text."
        ...

A host started with ``--workers 2 --worker-module my_tools`` runs ``python -m toolbridge.worker``
processes that import ``my_tools`` and serve its tools: to TypeScript (``host.workers.call``)
and to every session as ordinary tools. Needs ``toolbridge[worker]`` (pydantic).
"""

from toolbridge.worker.context import ToolContext, current_context
from toolbridge.worker.tools import WorkerTool, tool, tools_of

__all__ = ["ToolContext", "WorkerTool", "current_context", "tool", "tools_of"]
