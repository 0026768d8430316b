"""SessionContext: a worker's view of its session — variables shared with the host, and tools.

async with SessionContext(client) as session:
    await session.set_variable("temperature", 0.7)
    config = await session.get_variable("tool_config", {})
    async with session.watch(["temperature"]) as updates:
        async for update in updates:
            ...

Reads are served from a local cache that a background watch keeps coherent with the
host: every committed change (from this worker, other workers or the TypeScript
application) updates or evicts the cached entry in commit order. A cached read may
trail a write made elsewhere by the time that write's update takes to arrive; a read
right after this context's own write sees that write. For read-modify-write use
``expected_version`` (``VersionConflictError`` tells you to re-read and retry), or
``get_variable(..., fresh=True)`` to bypass the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self

from cachetools import TTLCache

from toolbridge.client.aio import ToolBridgeClient
from toolbridge.client.proxy import AsyncGRPCProxyTool, StreamingGRPCProxyTool
from toolbridge.client.variable_proxy import ContextProxyTool, VariableAwareProxyTool
from toolbridge.core import config
from toolbridge.core.errors import InvalidValueError, ToolBridgeError
from toolbridge.core.specs import ToolSpec
from toolbridge.core.values import decode_value, encode_value
from toolbridge.core.variables import (
    Variable,
    VariableConstraints,
    VariableInfo,
    VariableNotFoundError,
    VariableType,
)
from toolbridge.features.variables import (
    delete_variable,
    get_variable,
    list_variables,
    set_variable,
    write_request,
)
from toolbridge.features.watch import VariableWatch
from toolbridge.v1 import toolbridge_pb2 as pb

log = logging.getLogger("toolbridge")

_MISSING: Final[Any] = object()
# Above every real version. A name this context deleted gets it as its floor: the delete's
# version is not reported, so nothing of that name is cached again until this context
# writes it (its write's version then bounds everything older).
_DELETED_HERE: Final = 2**64


class SessionContext:
    """Variables and tools of one session, for a worker (see the module docstring).

    ``cache=False`` turns the variable cache (and its background watch) off: every
    read is then a round trip (the default is ``TOOL_BRIDGE_CONFIG["enable_caching"]``,
    True). Close the context (``async with`` or ``await close()``) to stop the watch; the
    session itself stays on the host.
    """

    def __init__(self, client: ToolBridgeClient, *, cache: bool | None = None) -> None:
        self.client = client
        client.require_session()
        self._cache_enabled = bool(config.TOOL_BRIDGE_CONFIG["enable_caching"]) if cache is None else cache
        self._cache: dict[str, Variable] = {}
        # Per name: cache fills from reads must be newer than this (the last deletion seen).
        self._floor: dict[str, int] = {}
        self._watch: VariableWatch | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[bool] | None = None
        # Bumped whenever the watch (re)starts or stops: a read that began under another
        # epoch may predate changes the watch did not see, so it must not fill the cache.
        self._epoch = 0
        self._live = False

    @property
    def session_id(self) -> str:
        return self.client.require_session()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops the cache's watch and empties the cache."""
        self._cache_enabled = False
        self._go_stale()
        task, self._watch_task = self._watch_task, None
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.aclose()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- variables --------------------------------------------------------------------------

    async def get_variable(self, name: str, default: Any = _MISSING, *, fresh: bool = False) -> Any:
        """The variable's value; ``default`` when it does not exist (else ``VariableNotFoundError``)."""
        try:
            variable = await self.get_variable_info(name, fresh=fresh)
        except VariableNotFoundError:
            if default is _MISSING:
                raise
            return default
        return variable.value

    async def get_variable_info(self, name: str, *, fresh: bool = False) -> Variable:
        """The variable with its version and metadata (from the cache unless ``fresh``)."""
        if not fresh and await self._ensure_cache():
            cached = self._cache.get(name)
            if cached is not None:
                return _copy(cached)
        epoch, live = self._epoch, self._live
        variable = await get_variable(self.client.transport, self.session_id, name)
        if live and epoch == self._epoch:
            self._fill(variable)
        return _copy(variable)

    async def set_variable(
        self,
        name: str,
        value: Any,
        tags: Mapping[str, str] | None = None,
        *,
        expected_version: int | None = None,
        create_if_missing: bool = True,
        metadata: Mapping[str, str] | None = None,
    ) -> VariableInfo:
        """Writes a variable (undeclared: any value; declared: checked against its constraints).

        ``tags``: string labels merged into the variable's tags (``VariableInfo.tags``;
        ``metadata`` is the original guide's name for them, still accepted).
        ``expected_version``: write only at that version (0: only if it does not exist),
        else ``VersionConflictError``. ``create_if_missing=False``: only overwrite, else
        ``VariableNotFoundError``.
        """
        if tags is not None and metadata is not None:
            raise TypeError("pass tags or its older name metadata, not both")
        request = write_request(
            self.session_id,
            name,
            value,
            tags=tags if tags is not None else metadata,
            expected_version=expected_version,
            create_if_missing=create_if_missing,
        )
        return await self._write(request)

    async def declare_variable(
        self,
        name: str,
        type: VariableType,
        value: Any,
        constraints: VariableConstraints | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        expected_version: int | None = None,
    ) -> VariableInfo:
        """Creates a variable with a declared type and constraints, holding ``value``.

        Declaring it again with the same type and constraints is a plain write; a
        different declaration fails (``type`` ValidationError).
        """
        request = write_request(
            self.session_id,
            name,
            value,
            tags=tags,
            expected_version=expected_version,
            type=type,
            constraints=constraints or VariableConstraints(),
        )
        return await self._write(request)

    async def delete_variable(self, name: str, *, expected_version: int | None = None) -> None:
        """Deletes a variable; ``VariableNotFoundError``, or ``VersionConflictError`` if stale."""
        await delete_variable(self.client.transport, self.session_id, name, expected_version)
        self._cache.pop(name, None)
        self._floor[name] = _DELETED_HERE

    async def list_variables(self, prefix: str = "") -> list[Variable]:
        """The session's variables sorted by name (only names starting with ``prefix``)."""
        return await list_variables(self.client.transport, self.session_id, prefix)

    def watch(
        self, names: Iterable[str] = (), *, include_initial: bool = False, resume_after: int | None = None
    ) -> VariableWatch:
        """Watches the named variables (all when none are named): ``async with ... as updates``.

        ``resume_after``: the ``sequence`` of the last update an earlier watch saw; the watch
        starts with every change committed after it.
        """
        return VariableWatch(self.client.transport, self.session_id, names, include_initial, resume_after)

    # -- tools ------------------------------------------------------------------------------

    async def execute_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls a host tool in this session (a streaming tool's chunks come back as a list)."""
        return await self.client.execute_tool(tool_id, *args, **kwargs)

    async def proxy_tools(
        self, *, variable_aware: bool = False, config_variable: str = "tool_config"
    ) -> dict[str, AsyncGRPCProxyTool]:
        """One proxy per tool that calls through this context (so a cached context caches).

        ``variable_aware``: proxies read their defaults from the ``config_variable``
        variable and store each result in ``last_<tool>_result`` (``VariableAwareProxyTool``).
        """
        tools: dict[str, AsyncGRPCProxyTool] = {}
        for spec in await self.client.list_tools():
            if variable_aware:
                tools[spec.name] = VariableAwareProxyTool(spec, self, config_variable=config_variable)
            elif spec.streaming:
                tools[spec.name] = StreamingGRPCProxyTool(spec, self.client)
            else:
                tools[spec.name] = ContextProxyTool(spec, self)
        return tools

    # -- the cache --------------------------------------------------------------------------

    async def _write(self, request: pb.SetVariableRequest) -> VariableInfo:
        epoch, live = self._epoch, self._live
        info = await set_variable(self.client.transport, request)
        if self._floor.get(request.variable_name) == _DELETED_HERE:
            self._floor[request.variable_name] = info.version - 1
        if live and epoch == self._epoch and not info.declared:
            # Read-your-writes: the stored value is exactly the one sent (a declared type may
            # normalize it, e.g. 1 -> 1.0, so those are left to the watch and the next read).
            value = decode_value(request.value)
            fields = {f: getattr(info, f) for f in info.__dataclass_fields__}
            self._fill(Variable(**fields, value=value))
        elif info.declared:
            self._cache.pop(request.variable_name, None)
        return info

    def _fill(self, variable: Variable) -> None:
        """Caches a variable read or written by this context, unless something newer is known."""
        cached = self._cache.get(variable.name)
        if variable.version <= self._floor.get(variable.name, 0):
            return
        if cached is None or variable.version > cached.version:
            self._cache[variable.name] = variable

    async def _ensure_cache(self) -> bool:
        """Starts the cache's watch if needed; True while the cache is coherent."""
        if not self._cache_enabled:
            return False
        if self._live:
            return True
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._start_watch())
        try:
            return await asyncio.shield(self._starting)
        except ToolBridgeError:
            return False

    async def _start_watch(self) -> bool:
        watch = VariableWatch(self.client.transport, self.session_id)
        try:
            await watch.ready()
        except ToolBridgeError as error:
            await watch.aclose()
            log.debug("variable cache disabled for now: the watch failed: %s", error)
            return False
        self._watch = watch
        self._epoch += 1
        self._live = True
        self._watch_task = asyncio.create_task(self._follow(watch, self._epoch))
        return True

    async def _follow(self, watch: VariableWatch, epoch: int) -> None:
        try:
            async for update in watch:
                if epoch != self._epoch:
                    return
                if update.kind == "session_ended":
                    break
                if update.kind == "deleted":
                    self._cache.pop(update.name, None)
                    self._floor[update.name] = max(self._floor.get(update.name, 0), update.version)
                elif update.variable is not None and update.version > self._floor.get(update.name, 0):
                    cached = self._cache.get(update.name)
                    # Updates arrive in commit order; >= lets the host's (normalized) value
                    # replace this context's own copy of the same version.
                    if cached is None or update.version >= cached.version:
                        self._cache[update.name] = update.variable
        except ToolBridgeError as error:
            log.debug("variable cache watch ended: %s", error)
        finally:
            if epoch == self._epoch:
                self._go_stale()

    def _go_stale(self) -> None:
        self._live = False
        self._epoch += 1
        self._cache.clear()
        self._floor.clear()


class CachedSessionContext(SessionContext):
    """A SessionContext that also caches the results of cacheable tools.

    Only tools whose spec says ``cacheable`` (pure: same arguments, same result) are
    cached, keyed by tool name and the encoded arguments, in a ``cachetools.TTLCache``
    (``maxsize`` entries, each kept ``ttl_ms``; by default ``TOOL_BRIDGE_CONFIG["cache_ttl_ms"]``,
    5 minutes). Other tools always run.
    """

    def __init__(
        self,
        client: ToolBridgeClient,
        *,
        cache: bool | None = None,
        maxsize: int = 1000,
        ttl_ms: float | None = None,
    ) -> None:
        super().__init__(client, cache=cache)
        ttl = config.cache_ttl_ms() if ttl_ms is None else ttl_ms
        self.results: TTLCache[tuple[str, bytes], Any] = TTLCache(maxsize=maxsize, ttl=ttl / 1000)
        self.hits = 0
        self.misses = 0
        self._specs: dict[str, ToolSpec] | None = None

    async def execute_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Any:
        spec = await self._spec(tool_id)
        key = _call_key(tool_id, args, kwargs) if spec is not None and spec.cacheable else None
        if key is None:
            return await super().execute_tool(tool_id, *args, **kwargs)
        if key in self.results:
            self.hits += 1
            return copy.deepcopy(self.results[key])
        self.misses += 1
        result = await super().execute_tool(tool_id, *args, **kwargs)
        self.results[key] = result
        return copy.deepcopy(result)

    def clear_cache(self) -> None:
        self.results.clear()

    async def _spec(self, tool_id: str) -> ToolSpec | None:
        if self._specs is None or tool_id not in self._specs:
            # Loaded once, and again for a name not seen (a session tool added later).
            self._specs = {spec.name: spec for spec in await self.client.list_tools()}
        return self._specs.get(tool_id)


def _call_key(tool_id: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """The cache key of a call: its arguments as deterministic bytes (None: not encodable)."""
    try:
        encoded = encode_value([list(args), dict(sorted(kwargs.items()))])
    except InvalidValueError:
        return None
    return tool_id, encoded.SerializeToString(deterministic=True)


def _copy(variable: Variable) -> Variable:
    """A copy whose value the caller may mutate without touching the cache."""
    value = variable.value
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return variable
    fields = {f: getattr(variable, f) for f in variable.__dataclass_fields__ if f != "value"}
    return Variable(**fields, value=copy.deepcopy(value))
