"""The benchmark harness (bench/run.py) run once with tiny counts, so it cannot rot between runs.

Figures from a smoke run mean nothing; these tests check only that every peer and workload
answered correctly and that the report is built from what was measured. No timing assertions.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import CLI, REPO_ROOT

RUN = REPO_ROOT / "bench" / "run.py"
WORKLOADS = {
    "sequential",
    "concurrent",
    "stream",
    "batch",
    "sessions",
    "dspy",
    "beside_large",
    "stores",
    "tracing",
    "cluster",
    "stall",
    "memory",
    "mcp_serve",
    "mcp_mount",
}
MCP_CASES = {"echo 10 B", "echo 10 B x64", "compute n=1000", "compute n=1000 x64"}
STALL_CASES = {
    "count_entries, map of 2,000 entries",
    "echo_value, map of 2,000 entries",
    "map of 5,000 entries (refused)",
}
ALL_PEERS = {"toolbridge", "toolbridge-sync", "unary", "grpc", "mcp-stdio", "mcp-http"}


def bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    if not CLI.is_file():
        pytest.fail(f"{CLI} is missing: build the host first (make build)")
    return subprocess.run(
        [sys.executable, str(RUN), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    done = bench("--smoke", "--out", str(out))
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text()), done.stdout, out


def test_every_workload_measures_every_peer_it_applies_to(
    smoke: tuple[dict[str, Any], str, Path],
) -> None:
    document, _, _ = smoke
    samples = document["samples"]
    assert set(samples) == WORKLOADS
    for case in ("echo 10 KiB", "echo 1 MiB", "compute n=1000"):
        assert set(samples["sequential"][case]) == ALL_PEERS
        assert set(samples["sequential"][case]["toolbridge"]) == {"calls_s", "p50_us", "p99_us"}
    # The raw socket ping-pong is the limit beside the small calls.
    assert set(samples["sequential"]["echo 10 B"]) == {*ALL_PEERS, "pingpong"}
    for case in samples["concurrent"].values():
        assert set(case) == ALL_PEERS
    assert set(samples["stream"]["64 KiB chunks"]) == {"toolbridge", "grpc"}
    assert set(samples["batch"]) == {"1000 echo calls", "1000 echo calls, 4 in flight"}
    for case in samples["batch"].values():
        assert set(case) == {"toolbridge", "grpc"}
    assert set(samples["sessions"]["create + cleanup"]) == {"toolbridge", "grpc", "mcp-http"}
    assert set(samples["dspy"]) == {"echo 10 B", "echo 10 B, sync"}
    for case in samples["dspy"].values():
        assert set(case) == {"dspy.Tool", "client"}
    assert set(samples["beside_large"]["echo 10 B beside 1 MiB echoes"]) == {"toolbridge", "unary"}
    assert set(samples["stores"]) == {
        "ExecuteTool echo 10 B",
        "ExecuteTool echo 10 B x64",
        "SetVariable 10 B",
        "SetVariable 10 B x64",
    }
    for case in samples["stores"].values():
        assert set(case) == {"memory-store", "redis-store", "redis-cluster", "redis-replicas", "redis-wait"}
    assert set(samples["tracing"]) == {"echo 10 B sequential", "echo 10 B x64"}
    for case in samples["tracing"].values():
        assert set(case) == {"tracing-off", "tracing-on"}
        assert set(case["tracing-on"]) >= {"calls_s", "host_cpu_us"}
    assert set(samples["stall"]) == STALL_CASES
    for case in samples["stall"].values():
        assert set(case) == {"toolbridge", "idle"}
        assert set(case["toolbridge"]) == {"p50_ms", "p99_ms", "max_ms", "request_ms"}
    cluster = samples["cluster"]["ExecuteTool echo 10 B, 3 clients x64"]
    assert set(cluster) == {"1 node", "3 nodes"}
    assert set(cluster["3 nodes"]) == {"calls_s", "hosts_cores", "clients_cores", "redis_cores", "loadavg_1m"}
    for workload, peers in (
        ("mcp_serve", {"host MCP endpoint", "bare MCP HTTP"}),
        ("mcp_mount", {"toolbridge, mounted", "MCP stdio direct"}),
    ):
        assert set(samples[workload]) == MCP_CASES
        for case in samples[workload].values():
            assert set(case) == peers
    assert set(samples["memory"]) == {"0 sessions", "100 sessions", "300 sessions"}
    assert set(samples["memory"]["0 sessions"]) == {"toolbridge", "grpc"}


def test_figures_are_positive_and_one_per_repeat(smoke: tuple[dict[str, Any], str, Path]) -> None:
    document, _, _ = smoke
    assert document["smoke"] is True
    assert document["repeats"] == 1
    for workload, cases in document["samples"].items():
        for case, peers in cases.items():
            for peer, metrics in peers.items():
                for metric, values in metrics.items():
                    where = f"{workload}/{case}/{peer}/{metric}"
                    assert len(values) == 1, where
                    assert math.isfinite(values[0]), where
                    assert values[0] > 0, where


def test_ratios_are_computed_from_the_samples_of_the_same_run(
    smoke: tuple[dict[str, Any], str, Path],
) -> None:
    document, _, _ = smoke
    samples = document["samples"]
    compared = {(c["workload"], c["case"], c["subject"], c["peer"]): c for c in document["comparisons"]}
    # Each call case: the asyncio client against 4 peers, both clients against MCP stdio and the
    # raw socket (only beside the small calls); stream and batch against bare gRPC.
    assert len([key for key in compared if key[0] == "sequential"]) == 4 * 5 + 2
    assert len([key for key in compared if key[0] == "concurrent"]) == 2 * 5
    targets_by_peer = {
        ("sequential", "toolbridge", "grpc"): 0.9,
        ("sequential", "toolbridge", "mcp-stdio"): 2.0,
        ("sequential", "toolbridge", "mcp-http"): 2.0,
        ("sequential", "toolbridge", "unary"): None,
        ("sequential", "toolbridge-sync", "mcp-stdio"): 2.5,
        ("sequential", "toolbridge", "pingpong"): None,
        ("sequential", "toolbridge-sync", "pingpong"): None,
        ("concurrent", "toolbridge", "grpc"): 0.9,
        ("concurrent", "toolbridge", "mcp-stdio"): 5.0,
        ("concurrent", "toolbridge", "mcp-http"): 2.0,
        ("concurrent", "toolbridge", "unary"): 2.0,
        ("concurrent", "toolbridge-sync", "mcp-stdio"): None,
    }
    for (workload, case, subject, peer), c in compared.items():
        mine = samples[workload][case][subject][c["metric"]][0]
        theirs = samples[workload][case][peer][c["metric"]][0]
        assert c["ratio"]["median"] == pytest.approx(mine / theirs)
        if workload in ("sequential", "concurrent"):
            assert c["target"] == targets_by_peer[(workload, subject, peer)]
        if workload == "dspy":
            assert (subject, peer, c["target"]) == ("dspy.Tool", "client", 0.9)
        if c["target"] is not None:
            assert c["met"] == (c["ratio"]["median"] >= c["target"])
        if workload == "stores":
            # The Redis store against memory, a Cluster against one Redis, the wait setting against none.
            expected = {
                ("redis-store", "memory-store"): 0.8 if case.startswith("ExecuteTool") else 0.5,
                ("redis-cluster", "redis-store"): 0.9,
                ("redis-wait", "redis-replicas"): None,
            }
            assert (subject, peer) in expected
            assert c["target"] == expected[subject, peer]
    assert len([key for key in compared if key[0] == "stores"]) == 4 * 3
    for case in MCP_CASES:
        assert compared["mcp_serve", case, "host MCP endpoint", "bare MCP HTTP"]["target"] == 0.9
        assert compared["mcp_mount", case, "toolbridge, mounted", "MCP stdio direct"]["target"] == 1.0
    assert compared["cluster", "ExecuteTool echo 10 B, 3 clients x64", "3 nodes", "1 node"]["target"] == 2.0
    targets = {t["target"]: t for t in document["targets"]}
    assert set(targets) == {
        "batches ≥ 100,000 calls/s, one at a time",
        "batches ≥ 100,000 calls/s, 4 in flight",
        "streams ≥ 200 MB/s",
        *(f"other clients' p99 < 100 ms during {case}" for case in STALL_CASES),
    }
    batch = samples["batch"]["1000 echo calls, 4 in flight"]["toolbridge"]["calls_s"][0]
    assert targets["batches ≥ 100,000 calls/s, 4 in flight"]["met"] == (batch >= 100_000)


def test_the_table_shows_the_run_and_a_saved_run_renders_as_markdown(
    smoke: tuple[dict[str, Any], str, Path],
) -> None:
    document, stdout, out = smoke
    assert "Throughput, each as a ratio to its peer in the same run" in stdout
    assert f"results in {out}" in stdout
    assert f"{document['machine']['cpus']} CPUs" in stdout
    done = bench("--report", str(out), "--markdown", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "| workload | case | subject | peer | ratio (min-max) | target |" in done.stdout
    assert "| sequential | echo 10 B | toolbridge " in done.stdout


def test_an_unknown_workload_is_refused_before_anything_starts() -> None:
    done = bench("--only", "sequential,latency", timeout=60)
    assert done.returncode == 2
    assert "unknown workloads latency" in done.stderr
    assert "==> starting peers" not in done.stderr
