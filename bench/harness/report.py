"""Turns samples into the comparisons the benchmarks report: each figure as a ratio to its peer in
the same run (median and min-max over repeats), checked against the targets, as a table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .stats import Spread
from .workloads import Figures

PEER_LABELS = {
    "toolbridge": "toolbridge",
    "toolbridge-sync": "toolbridge sync",
    "unary": "grpcio unary",
    "pingpong": "raw socket ping-pong",
    "grpc": "bare grpc-js",
    "mcp-stdio": "MCP stdio",
    "mcp-http": "MCP HTTP",
    "dspy.Tool": "dspy.Tool",
    "client": "raw client",
    "memory-store": "memory store",
    "redis-store": "Redis store",
    "redis-cluster": "Redis store on a 3-master Cluster",
    "redis-replicas": "Redis store, 2 replicas",
    "redis-wait": "the same, storeWaitReplicas 1",
    "idle": "the same probe, host idle",
    "1 node": "1 node",
    "3 nodes": "3 nodes",
    "host MCP endpoint": "host MCP endpoint",
    "bare MCP HTTP": "bare MCP server (HTTP)",
    "toolbridge, mounted": "toolbridge, mounted tool",
    "MCP stdio direct": "MCP client on the server (stdio)",
    "tracing-off": "tracing off",
    "tracing-on": "every call traced",
    "baseline": "the --baseline host",
}
UNITS = {
    "calls_s": "calls/s",
    "mb_s": "MB/s",
    "chunks_s": "chunks/s",
    "pairs_s": "pairs/s",
    "rss_mb": "MB",
    "p99_ms": "ms",
    "host_cpu_us": "us host CPU/call",
}


@dataclass(frozen=True)
class Comparison:
    """``subject`` against ``peer`` on one workload case: ratio = subject / peer of ``metric``."""

    workload: str
    case: str
    peer: str
    metric: str = "calls_s"
    subject: str = "toolbridge"
    target: float | None = None


@dataclass(frozen=True)
class Bound:
    """An absolute target on one figure (its median)."""

    workload: str
    case: str
    metric: str
    limit: float
    at_least: bool
    what: str
    peer: str = "toolbridge"


def comparisons(figures: Figures) -> list[Comparison]:
    found: list[Comparison] = []
    for workload, cases in figures.items():
        for case in cases:
            if workload in ("sequential", "concurrent"):
                found += _call_comparisons(workload, case)
            elif workload in ("stream", "batch"):
                metric = "mb_s" if workload == "stream" else "calls_s"
                found.append(Comparison(workload, case, "grpc", metric))
            elif workload == "sessions":
                found += [Comparison(workload, case, peer, "pairs_s") for peer in ("grpc", "mcp-http")]
            elif workload == "dspy":
                # Within 10% of the raw client call the tool wraps.
                found.append(Comparison(workload, case, "client", subject="dspy.Tool", target=0.9))
            elif workload == "beside_large":
                found.append(Comparison(workload, case, "unary"))
            elif workload == "stores":
                target = 0.8 if case.startswith("ExecuteTool") else 0.5
                found.append(Comparison(workload, case, "memory-store", subject="redis-store", target=target))
                found.append(Comparison(workload, case, "redis-store", subject="redis-cluster", target=0.9))
                # The wait setting's cost: no target, it buys durability.
                found.append(Comparison(workload, case, "redis-replicas", subject="redis-wait"))
            elif workload == "tracing":
                # Every call traced to a local receiver: at least 0.85x of tracing off; and tracing off
                # against the host of another checkout (--baseline): at most 2% slower, in CPU per call too.
                found += [
                    Comparison(workload, case, "tracing-off", subject="tracing-on", target=0.85),
                    Comparison(workload, case, "baseline", subject="tracing-off", target=0.98),
                    Comparison(workload, case, "baseline", subject="tracing-off", metric="host_cpu_us"),
                    Comparison(workload, case, "tracing-off", subject="tracing-on", metric="host_cpu_us"),
                ]
            elif workload == "cluster":
                found.append(Comparison(workload, case, "1 node", subject="3 nodes", target=2.0))
            elif workload == "mcp_serve":
                # An MCP client loses at most 10% on the host's endpoint against a bare server.
                found.append(
                    Comparison(
                        workload,
                        case,
                        "bare MCP HTTP",
                        subject="host MCP endpoint",
                        target=0.9,
                    )
                )
            elif workload == "mcp_mount":
                # A mounted tool is at least as fast from Python as the MCP client on the server itself.
                found.append(
                    Comparison(
                        workload,
                        case,
                        "MCP stdio direct",
                        subject="toolbridge, mounted",
                        target=1.0,
                    )
                )
    return [
        c
        for c in found
        if _has(figures, c.workload, c.case, c.subject, c.metric)
        and _has(figures, c.workload, c.case, c.peer, c.metric)
    ]


def _call_comparisons(workload: str, case: str) -> list[Comparison]:
    """The tool-call targets: the asyncio client (``toolbridge``) sequentially ≥ 2x MCP stdio and
    with 64 in flight ≥ 5x MCP stdio and ≥ 2x the unary client; the blocking client
    (``toolbridge-sync``) sequentially ≥ 2.5x MCP stdio; both against the raw socket as the limit."""
    sequential = workload == "sequential"
    return [
        Comparison(workload, case, "grpc", target=0.9),
        Comparison(workload, case, "mcp-stdio", target=2.0 if sequential else 5.0),
        Comparison(workload, case, "mcp-http", target=2.0),
        Comparison(workload, case, "unary", target=None if sequential else 2.0),
        Comparison(
            workload,
            case,
            "mcp-stdio",
            subject="toolbridge-sync",
            target=2.5 if sequential else None,
        ),
        Comparison(workload, case, "pingpong"),
        Comparison(workload, case, "pingpong", subject="toolbridge-sync"),
    ]


def bounds(figures: Figures) -> list[Bound]:
    found = [
        Bound(
            "batch",
            "1000 echo calls",
            "calls_s",
            100_000,
            True,
            "batches ≥ 100,000 calls/s, one at a time",
        ),
        Bound(
            "batch",
            "1000 echo calls, 4 in flight",
            "calls_s",
            100_000,
            True,
            "batches ≥ 100,000 calls/s, 4 in flight",
        ),
        Bound("stream", "64 KiB chunks", "mb_s", 200, True, "streams ≥ 200 MB/s"),
        Bound(
            "memory",
            "100000 sessions",
            "rss_mb",
            300,
            False,
            "100,000 idle sessions < 300 MB",
        ),
    ]
    for case in figures.get("stall", {}):
        found.append(
            Bound(
                "stall",
                case,
                "p99_ms",
                100,
                False,
                f"other clients' p99 < 100 ms during {case}",
            )
        )
    return [b for b in found if _has(figures, b.workload, b.case, b.peer, b.metric)]


def _has(figures: Figures, workload: str, case: str, peer: str, metric: str) -> bool:
    """Whether the figure was measured, every sample above 0 (a CPU time under the clock's tick is 0)."""
    values = figures.get(workload, {}).get(case, {}).get(peer, {}).get(metric)
    return bool(values) and all(value > 0 for value in values or ())


def samples(figures: Figures, workload: str, case: str, peer: str, metric: str) -> list[float]:
    return figures[workload][case][peer][metric]


def ratio_spread(figures: Figures, c: Comparison) -> Spread:
    mine = samples(figures, c.workload, c.case, c.subject, c.metric)
    theirs = samples(figures, c.workload, c.case, c.peer, c.metric)
    # Samples pair up by repeat: both peers ran back to back under the same machine load.
    return Spread.of([a / b for a, b in zip(mine, theirs, strict=True)])


def summarize(figures: Figures) -> dict[str, Any]:
    """The JSON-ready summary: every figure's spread, every comparison and target verdict."""
    spreads = {
        workload: {
            case: {
                peer: {metric: Spread.of(values).as_dict() for metric, values in metrics.items()}
                for peer, metrics in peers.items()
            }
            for case, peers in cases.items()
        }
        for workload, cases in figures.items()
    }
    compared = []
    for c in comparisons(figures):
        spread = ratio_spread(figures, c)
        compared.append(
            {
                "workload": c.workload,
                "case": c.case,
                "metric": c.metric,
                "subject": c.subject,
                "peer": c.peer,
                "ratio": spread.as_dict(),
                "target": c.target,
                "met": None if c.target is None else spread.median >= c.target,
            }
        )
    bounded = []
    for b in bounds(figures):
        value = Spread.of(samples(figures, b.workload, b.case, b.peer, b.metric)).median
        met = value >= b.limit if b.at_least else value < b.limit
        bounded.append(
            {
                "target": b.what,
                "workload": b.workload,
                "case": b.case,
                "value": value,
                "met": met,
            }
        )
    return {"figures": spreads, "comparisons": compared, "targets": bounded}


def _fmt(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:,.0f}k"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _figure(figures: Figures, workload: str, case: str, peer: str, metric: str) -> str:
    spread = Spread.of(samples(figures, workload, case, peer, metric))
    return f"{_fmt(spread.median)} {UNITS.get(metric, metric)}"


def _verdict(target: float | None, median: float) -> str:
    if target is None:
        return ""
    return f"≥{target:g}x {'met' if median >= target else 'MISSED'}"


def rows(figures: Figures) -> Iterator[list[str]]:
    """Table rows: workload, case, toolbridge figure, peer, peer figure, ratio (spread), target."""
    for c in comparisons(figures):
        spread = ratio_spread(figures, c)
        yield [
            c.workload,
            c.case,
            f"{PEER_LABELS[c.subject]} {_figure(figures, c.workload, c.case, c.subject, c.metric)}",
            f"{PEER_LABELS[c.peer]} {_figure(figures, c.workload, c.case, c.peer, c.metric)}",
            f"{spread.median:.2f}x ({spread.low:.2f}-{spread.high:.2f})",
            _verdict(c.target, spread.median),
        ]


def latency_rows(figures: Figures) -> Iterator[list[str]]:
    for workload in ("sequential", "dspy", "beside_large"):
        for case, peers in figures.get(workload, {}).items():
            for peer, metrics in peers.items():
                if "p50_us" in metrics:
                    p50 = Spread.of(metrics["p50_us"])
                    p99 = Spread.of(metrics["p99_us"])
                    yield [
                        workload,
                        case,
                        PEER_LABELS[peer],
                        f"{p50.median:,.0f}",
                        f"{p99.median:,.0f}",
                    ]


def target_rows(figures: Figures) -> Iterator[list[str]]:
    for b in bounds(figures):
        spread = Spread.of(samples(figures, b.workload, b.case, b.peer, b.metric))
        met = spread.median >= b.limit if b.at_least else spread.median < b.limit
        shown = f"{_fmt(spread.median)} {UNITS[b.metric]}"
        if spread.samples > 1:
            shown += f" ({_fmt(spread.low)}-{_fmt(spread.high)})"
        yield [b.what, shown, "met" if met else "MISSED"]
    for case, peers in figures.get("memory", {}).items():
        for peer, metrics in peers.items():
            yield [
                f"RSS of {PEER_LABELS[peer]} with {case}",
                f"{_fmt(Spread.of(metrics['rss_mb']).median)} MB",
                "",
            ]


def text_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


COMPARISON_HEADER = ["workload", "case", "subject", "peer", "ratio (min-max)", "target"]
LATENCY_HEADER = ["workload", "case", "peer", "p50 µs", "p99 µs"]
TARGET_HEADER = ["target", "measured (min-max)", "verdict"]


def render(figures: Figures, markdown: bool = False) -> str:
    table = markdown_table if markdown else text_table
    parts = []
    for title, header, body in (
        (
            "Throughput, each as a ratio to its peer in the same run",
            COMPARISON_HEADER,
            list(rows(figures)),
        ),
        ("Absolute targets and memory", TARGET_HEADER, list(target_rows(figures))),
        (
            "Latency of sequential calls (medians over repeats)",
            LATENCY_HEADER,
            list(latency_rows(figures)),
        ),
    ):
        if body:
            parts.append(
                f"{'**' if markdown else ''}{title}{'**' if markdown else ''}\n\n{table(header, body)}"
            )
    return "\n\n".join(parts)
