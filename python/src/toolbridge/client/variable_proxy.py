"""Proxy tools that call through a SessionContext, and the variable-aware kind.

A ``VariableAwareProxyTool`` takes its defaults from a session variable and leaves its
result in another, so tools and the TypeScript application can pass context along
without coupling:

- before the call, ``tool_config[<tool name>]`` (a map of argument defaults, when the
  ``tool_config`` variable exists) fills in the keyword arguments the caller left out;
- after it, the result is stored in ``last_<tool name>_result``, tagged with the tool
  and the time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from toolbridge.client.proxy import AsyncGRPCProxyTool, ToolCaller
from toolbridge.core.errors import InvalidValueError
from toolbridge.core.specs import ToolSpec
from toolbridge.core.variables import VARIABLE_NAME_MAX, VariableInfo

log = logging.getLogger("toolbridge")


class VariableContext(Protocol):
    """What these proxies call through: a ``SessionContext`` (its tools and variables)."""

    @property
    def client(self) -> ToolCaller: ...

    async def execute_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Any: ...

    async def get_variable(self, name: str, default: Any = ..., *, fresh: bool = False) -> Any: ...

    async def set_variable(
        self,
        name: str,
        value: Any,
        tags: Mapping[str, str] | None = None,
        *,
        expected_version: int | None = None,
        create_if_missing: bool = True,
    ) -> VariableInfo: ...


class ContextProxyTool(AsyncGRPCProxyTool):
    """A proxy whose calls go through a SessionContext (so a CachedSessionContext caches them)."""

    def __init__(self, spec: ToolSpec, session_context: VariableContext) -> None:
        super().__init__(spec, session_context.client)
        self.session_context = session_context

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.session_context.execute_tool(self.name, *args, **kwargs)


class VariableAwareProxyTool(ContextProxyTool):
    """Reads its defaults from ``config_variable`` and stores its result (see the module docstring).

    Arguments the caller passes win over the configured ones; ``store_result=False``
    skips storing the result. A result too large for a variable is returned all the
    same, with a warning logged instead of it being stored.
    """

    def __init__(
        self,
        spec: ToolSpec,
        session_context: VariableContext,
        *,
        config_variable: str = "tool_config",
        store_result: bool = True,
    ) -> None:
        super().__init__(spec, session_context)
        self.config_variable = config_variable
        self.store_result = store_result
        self.result_variable = f"last_{self.name}_result"

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        config = await self.session_context.get_variable(self.config_variable, None)
        defaults = config.get(self.name) if isinstance(config, Mapping) else None
        if isinstance(defaults, Mapping):
            # Parameters the positional arguments bind to are the caller's too.
            bound = {p.name for p in self.spec.parameters[: len(args)]}
            kwargs = {**{k: v for k, v in defaults.items() if k not in bound}, **kwargs}
        result = await self.session_context.execute_tool(self.name, *args, **kwargs)
        if self.store_result:
            await self._store(result)
        return result

    async def _store(self, result: Any) -> None:
        if len(self.result_variable) > VARIABLE_NAME_MAX:
            log.warning("not storing %s's result: %r is too long a name", self.name, self.result_variable)
            return
        try:
            await self.session_context.set_variable(
                self.result_variable,
                result,
                tags={"tool": self.name, "timestamp": datetime.now(UTC).isoformat()},
            )
        except InvalidValueError as error:
            log.warning("not storing the result of %s in %s: %s", self.name, self.result_variable, error)
