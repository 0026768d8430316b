"""Session variables from Python against the real host, with its TypeScript side in the loop.

The ``var_*`` tools (testdata/tools/variable-tools.ts) act as the TypeScript application:
they read, write and watch through ``host.variables(sessionId)``, so these tests check that
Python workers and the host really share one state.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from toolbridge import (
    CachedSessionContext,
    ConstraintViolationError,
    HostProcess,
    InvalidValueError,
    SessionContext,
    ToolBridgeClient,
    VariableAwareProxyTool,
    VariableConstraints,
    VariableError,
    VariableNotFoundError,
    VersionConflictError,
)

from .conftest import REPO_ROOT, wait_for


async def attach(host: HostProcess, session_id: str) -> ToolBridgeClient:
    """A second client (another worker) attached to the same session."""
    other = ToolBridgeClient(host.target)
    await other.initialize_session(session_id)
    return other


def same(a: Any, b: Any) -> bool:
    """Equality that also compares arrays (dtype, shape, elements) and NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b))
        )
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


VALUES: dict[str, Any] = {
    "null": None,
    "bool": True,
    "int": -(2**63),
    "int_max": 2**63 - 1,
    "big_int": 2**100 + 1,
    "float": 0.1,
    "negative_zero": -0.0,
    "nan": math.nan,
    "infinity": -math.inf,
    "string": "grüße, 世界 ✓",
    "empty_string": "",
    "bytes": bytes(range(256)),
    "list": [1, "two", None, [3.5]],
    "map": {"z": 1, "a": {"nested": [True, b"\x00"]}},
    "timestamp": datetime(2026, 11, 24, 12, 30, 15, 123456, tzinfo=UTC),
    "tensor": np.arange(6, dtype=np.float32).reshape(2, 3),
}


async def test_every_value_kind_round_trips_through_python_and_typescript(
    ctx: SessionContext, client: ToolBridgeClient
) -> None:
    for kind, value in VALUES.items():
        name = f"kind.{kind}"
        info = await ctx.set_variable(name, value)
        assert info.version >= 1
        assert info.created_by == "python"
        assert same(await ctx.get_variable(name), value), kind
        assert same(await ctx.get_variable(name, fresh=True), value), kind
        # The TypeScript application reads it, and its re-encoding decodes to the same value.
        seen = await client.execute_tool("var_read", name=name)
        assert same(seen["value"], value), kind
        assert seen["created_by"] == "python"
    listed = {v.name: v.value for v in await ctx.list_variables(prefix="kind.")}
    assert sorted(listed) == sorted(f"kind.{k}" for k in VALUES)


# dtype -> the TypedArray the host sees it as (float16 and bool have no TypedArray of their own).
TYPED_ARRAYS = {
    "bool": "Uint8Array",
    "int8": "Int8Array",
    "int16": "Int16Array",
    "int32": "Int32Array",
    "int64": "BigInt64Array",
    "uint8": "Uint8Array",
    "uint16": "Uint16Array",
    "uint32": "Uint32Array",
    "uint64": "BigUint64Array",
    "float16": "Uint16Array",
    "float32": "Float32Array",
    "float64": "Float64Array",
}


@pytest.mark.parametrize("dtype", list(TYPED_ARRAYS))
async def test_tensor_is_a_typed_array_on_the_host_and_comes_back_exact(
    ctx: SessionContext, client: ToolBridgeClient, dtype: str
) -> None:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if dtype == "bool":
        array = np.array([[True, False, True], [False, False, True]])
    elif info is not None:
        array = np.array([[info.min, 0, 1], [2, 3, info.max]], dtype=dtype)
    else:
        array = np.array([[-1.5, 0.0, 1e-3], [np.inf, -0.0, 65504.0]], dtype=dtype)
    await ctx.set_variable("tensor_in", array)
    seen = await client.execute_tool("var_tensor_reverse", name="tensor_in", into="tensor_out")
    assert seen == {"typed_array": TYPED_ARRAYS[dtype], "dtype": dtype, "shape": [2, 3]}
    back = await ctx.get_variable("tensor_in", fresh=True)
    assert back.dtype == array.dtype
    assert back.shape == (2, 3)
    assert np.array_equal(back, array)
    reversed_on_host = await ctx.get_variable("tensor_out", fresh=True)
    expected = array.ravel()[::-1].reshape(2, 3)
    assert reversed_on_host.dtype == array.dtype
    assert reversed_on_host.shape == (2, 3)
    assert reversed_on_host.tobytes() == expected.tobytes()


async def test_python_and_typescript_share_a_variable(ctx: SessionContext, client: ToolBridgeClient) -> None:
    await ctx.set_variable("temperature", 0.7, tags={"owner": "planner"})
    seen = await client.execute_tool("var_read", name="temperature")
    assert seen == {
        "value": 0.7,
        "version": 1,
        "type": "float",
        "created_by": "python",
        "updated_by": "python",
        "tags": {"owner": "planner"},
    }
    assert await ctx.get_variable("temperature") == 0.7  # cached from here on
    version = await client.execute_tool("var_write", name="temperature", value=0.2)
    assert version == 2

    async def cache_caught_up() -> bool:
        return bool(await ctx.get_variable("temperature") == 0.2)

    await wait_for(cache_caught_up, 5.0, "the cached read to see the host's write")
    latest = await ctx.get_variable_info("temperature")
    assert (latest.version, latest.created_by, latest.updated_by) == (2, "python", "typescript")
    assert latest.tags == {"owner": "planner"}
    assert latest.created_at <= latest.updated_at


async def test_cache_follows_other_workers_and_returns_copies(
    ctx: SessionContext, client: ToolBridgeClient, host: HostProcess
) -> None:
    other = await attach(host, client.require_session())
    try:
        other_ctx = SessionContext(other, cache=False)
        await ctx.set_variable("shared", {"items": [1]})
        value = await ctx.get_variable("shared")
        value["items"].append(99)  # the caller's copy, not the cache's
        assert await ctx.get_variable("shared") == {"items": [1]}

        await other_ctx.set_variable("shared", {"items": [1, 2]})

        async def sees_write() -> bool:
            return bool(await ctx.get_variable("shared") == {"items": [1, 2]})

        await wait_for(sees_write, 5.0, "the other worker's write")
        await other_ctx.delete_variable("shared")

        async def sees_delete() -> bool:
            return await ctx.get_variable("shared", None) is None

        await wait_for(sees_delete, 5.0, "the other worker's delete")
        # Read-your-writes: this context's own write is visible at once.
        await ctx.set_variable("shared", "again")
        assert await ctx.get_variable("shared") == "again"
        with pytest.raises(VariableNotFoundError, match="no_such_variable") as caught:
            await ctx.get_variable("no_such_variable")
        assert isinstance(caught.value, KeyError)
        assert await ctx.get_variable("no_such_variable", "fallback") == "fallback"
    finally:
        await other.close()


async def test_declared_types_and_constraints(ctx: SessionContext) -> None:
    await ctx.declare_variable("temperature", "float", 0.5, VariableConstraints(min=0.0, max=2.0))
    await ctx.set_variable("temperature", 1)  # an integer is a float here
    assert await ctx.get_variable("temperature", fresh=True) == 1.0
    cases: list[tuple[str, str, Any, VariableConstraints, Any, str]] = [
        ("temperature", "float", 0.5, VariableConstraints(min=0.0, max=2.0), 2.5, "max"),
        ("temperature", "float", 0.5, VariableConstraints(min=0.0, max=2.0), "hot", "type"),
        ("retries", "integer", 3, VariableConstraints(min=0, max=10), -1, "min"),
        ("retries", "integer", 3, VariableConstraints(min=0, max=10), 1.5, "type"),
        ("model", "string", "gpt", VariableConstraints(min_length=2, max_length=8), "x", "min_length"),
        ("model", "string", "gpt", VariableConstraints(min_length=2, max_length=8), "x" * 9, "max_length"),
        ("slug", "string", "ab-c", VariableConstraints(pattern="^[a-z-]+$"), "Not A Slug", "pattern"),
        ("mode", "string", "fast", VariableConstraints(choices=["fast", "slow"]), "medium", "choices"),
        ("level", "choice", 1, VariableConstraints(choices=[1, "two", None]), 3, "choices"),
        ("enabled", "boolean", True, VariableConstraints(), 1, "type"),
        (
            "items",
            "list",
            [1],
            VariableConstraints(max_length=2, item_type="integer"),
            [1, 2, 3],
            "max_length",
        ),
        ("items", "list", [1], VariableConstraints(max_length=2, item_type="integer"), ["a"], "type"),
        ("settings", "map", {"a": 1}, VariableConstraints(max_length=1), {"a": 1, "b": 2}, "max_length"),
        ("vector", "embedding", [0.1, 0.2, 0.3], VariableConstraints(dimensions=3), [0.1, 0.2], "dimensions"),
        (
            "weights",
            "tensor",
            np.zeros((2, 2), dtype=np.float32),
            VariableConstraints(shape=[2, 2], dtype="float32"),
            np.zeros((2, 3), dtype=np.float32),
            "shape",
        ),
        (
            "weights",
            "tensor",
            np.zeros((2, 2), dtype=np.float32),
            VariableConstraints(shape=[2, 2], dtype="float32"),
            np.zeros((2, 2), dtype=np.float64),
            "dtype",
        ),
    ]
    for name, type_, good, constraints, bad, rule in cases:
        info = await ctx.declare_variable(name, type_, good, constraints)  # type: ignore[arg-type]
        assert info.declared
        assert info.type == type_
        with pytest.raises(ConstraintViolationError) as caught:
            await ctx.set_variable(name, bad)
        assert caught.value.constraint == rule, (name, rule, caught.value.message)
        assert caught.value.variable_name == name
        assert name in caught.value.message
        current = await ctx.get_variable_info(name, fresh=True)
        assert same(current.value, good), "the old value stays"
        assert current.version == info.version
    # A declaration that does not hold for its own first value is refused too.
    with pytest.raises(ConstraintViolationError):
        await ctx.declare_variable("fresh_bad", "integer", 11, VariableConstraints(max=10))
    assert await ctx.get_variable("fresh_bad", None) is None
    # Undeclared variables take any value and record its type.
    for value, inferred in [(1, "integer"), ("s", "string"), ([1], "list"), (None, "null")]:
        info = await ctx.set_variable("loose", value)
        assert (info.declared, info.type) == (False, inferred)


async def test_versions_and_expected_version(ctx: SessionContext) -> None:
    first = await ctx.set_variable("counter", 0, expected_version=0)  # 0: only if it does not exist
    assert first.version == 1
    with pytest.raises(VersionConflictError) as caught:
        await ctx.set_variable("counter", 5, expected_version=0)
    assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)
    assert (await ctx.set_variable("counter", 1, expected_version=1)).version == 2
    with pytest.raises(VersionConflictError):
        await ctx.delete_variable("counter", expected_version=1)
    await ctx.delete_variable("counter", expected_version=2)
    with pytest.raises(VariableNotFoundError):
        await ctx.set_variable("counter", 1, create_if_missing=False)
    # A re-created variable never reuses a version it had before.
    assert (await ctx.set_variable("counter", 7)).version > 2


async def test_two_racing_writers_exactly_one_wins_each_round(
    client: ToolBridgeClient, host: HostProcess
) -> None:
    other = await attach(host, client.require_session())
    try:
        a, b = SessionContext(client, cache=False), SessionContext(other, cache=False)
        await a.set_variable("race", "start")
        for round_ in range(20):
            version = (await a.get_variable_info("race")).version
            results = await asyncio.gather(
                a.set_variable("race", f"a{round_}", expected_version=version),
                b.set_variable("race", f"b{round_}", expected_version=version),
                return_exceptions=True,
            )
            wins = [r for r in results if not isinstance(r, BaseException)]
            losses = [r for r in results if isinstance(r, VersionConflictError)]
            assert len(wins) == 1, results
            assert len(losses) == 1, results
            assert (await a.get_variable_info("race")).version == version + 1

        # Read-modify-write with retries, in rounds: both writers read before either writes (a
        # barrier), so until one is done every round is a race on one version that one loses.
        await a.set_variable("total", 0)
        left = [25, 25]
        conflicts = 0
        while any(left):
            racing = [i for i, n in enumerate(left) if n > 0]
            contexts = [(a, b)[i] for i in racing]
            read = await asyncio.gather(*(context.get_variable_info("total") for context in contexts))
            written = await asyncio.gather(
                *(
                    context.set_variable("total", current.value + 1, expected_version=current.version)
                    for context, current in zip(contexts, read, strict=True)
                ),
                return_exceptions=True,
            )
            for i, result in zip(racing, written, strict=True):
                if isinstance(result, VersionConflictError):
                    conflicts += 1
                elif isinstance(result, BaseException):
                    raise result
                else:
                    left[i] -= 1
            assert sum(not isinstance(result, BaseException) for result in written) == 1, written
        assert conflicts >= 25
        assert await a.get_variable("total") == 50
    finally:
        await other.close()


async def test_bad_names_and_oversized_values_get_clear_errors(ctx: SessionContext) -> None:
    for bad in ["", "1starts_with_digit", "has space", "x" * 129, "semi;colon"]:
        with pytest.raises(VariableError) as caught:
            await ctx.set_variable(bad, 1)
        assert caught.value.type == "ValidationError", bad
        assert "name" in caught.value.message, caught.value.message
        with pytest.raises(VariableError):
            await ctx.get_variable(bad)
    with pytest.raises(InvalidValueError) as too_big:
        await ctx.set_variable("blob", b"\x00" * (2 * 1024 * 1024))
    assert too_big.value.reason == "too_large"
    assert "maxVariableBytes" in too_big.value.message
    with pytest.raises(InvalidValueError) as unencodable:
        await ctx.set_variable("handle", object())
    assert "'handle'" in unencodable.value.message
    assert await ctx.list_variables() == []  # nothing was written
    # The host is still serving.
    await ctx.set_variable("fine", 1)
    assert await ctx.get_variable("fine") == 1


async def test_variable_aware_proxy_tool_reads_tool_config_and_stores_its_result(
    ctx: SessionContext, client: ToolBridgeClient
) -> None:
    tools = await ctx.proxy_tools(variable_aware=True)
    add = tools["add"]
    assert isinstance(add, VariableAwareProxyTool)
    # Without tool_config the caller's arguments are all there is.
    assert await add(a=1, b=2) == 3
    await ctx.set_variable("tool_config", {"add": {"b": 10}, "echo": {"value": "configured"}})
    assert await add(a=1) == 11
    assert await add(a=1, b=5) == 6  # the caller wins over the configuration
    assert await add(4) == 14  # a positional argument binds to `a`; `b` still comes from config
    stored = await ctx.get_variable_info("last_add_result", fresh=True)
    assert stored.value == 14
    assert stored.created_by == "python"
    assert stored.tags["tool"] == "add"
    assert datetime.fromisoformat(stored.tags["timestamp"]).tzinfo is not None
    # The TypeScript side reads the result a Python tool left behind.
    seen = await client.execute_tool("var_read", name="last_add_result")
    assert seen["value"] == 14
    assert seen["tags"]["tool"] == "add"
    assert await tools["echo"]() == "configured"
    assert await ctx.get_variable("last_echo_result", fresh=True) == "configured"


async def test_cached_context_caches_only_cacheable_tools(client: ToolBridgeClient) -> None:
    async with CachedSessionContext(client) as cached:
        assert (cached.results.maxsize, cached.results.ttl) == (1000, 300.0)
        tickets = [await cached.execute_tool("next_ticket") for _ in range(3)]
        assert tickets == [tickets[0], tickets[0] + 1, tickets[0] + 2], "a side-effecting tool always runs"
        assert (cached.hits, cached.misses) == (0, 0)

        before = (await client.get_metrics()).tools["echo"].calls
        results = [await cached.execute_tool("echo", value={"k": [1, 2]}) for _ in range(3)]
        assert results == [{"k": [1, 2]}] * 3
        assert (cached.hits, cached.misses) == (2, 1)
        assert (await client.get_metrics()).tools["echo"].calls == before + 1
        results[0]["k"].append(3)  # callers get copies
        assert await cached.execute_tool("echo", value={"k": [1, 2]}) == {"k": [1, 2]}
        assert await cached.execute_tool("echo", value="other") == "other"  # other arguments: a miss
        assert cached.misses == 2

        # Proxies built from a cached context go through its cache as well.
        tools = await cached.proxy_tools()
        assert await tools["add"](a=2, b=3) == 5
        assert await tools["add"](a=2, b=3) == 5
        assert await tools["next_ticket"]() == tickets[-1] + 1
        assert (cached.hits, cached.misses) == (4, 3)


async def test_shared_state_example_runs() -> None:
    """`make demo-variables` (docs/demos.md): TypeScript and a Python worker share variables."""
    process = await asyncio.create_subprocess_exec(
        "node",
        "--import",
        "tsx",
        "examples/variables/shared-state.ts",
        cwd=REPO_ROOT,
        env={**os.environ, "TOOLBRIDGE_PYTHON": sys.executable},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    assert "python ▸ read discount_rate = 0.1 (set by the TypeScript application)" in text
    assert "raising discount_rate to 0.9 was refused" in text
    assert 'typescript ▸ saw quote v1 from python (tags {"by":"pricing-worker"})' in text
    assert "python ▸ saw approved = True (written by typescript); done" in text
    assert "session variables: approved@1, discount_rate@1, quote@1" in text
