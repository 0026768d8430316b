/**
 * The worker pool's benchmark (`make bench` runs it after bench/run.py):
 *
 * 1. TypeScript calling Python: an echo through `WorkerPool.call` (a real worker: argument
 *    checks, heartbeat, supervision) against a bare grpc-js client calling a bare grpcio
 *    server that answers the same CallTool with the same echo, over the same kind of Unix
 *    socket. Sequential calls and 16 in flight; the ratio is pool / bare in the same repeat.
 * 2. Agent start: from the TypeScript call to the agent's first tool call, on a warm worker
 *    (`host.workers.runAgent`) and in a spawned interpreter (`runPythonAgent`).
 *
 *   node --import tsx bench/workers.ts [--repeats 5] [--smoke]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { encodeValue, type pb, pbWorker } from "@toolbridge/core";
import { defineTool, runPythonAgent, ToolBridgeHost, WorkerPool } from "@toolbridge/server";
import { pino } from "pino";
import { z } from "zod";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const PYTHON = process.env.TOOLBRIDGE_PYTHON ?? `${REPO}.venv/bin/python`;
const PEERS = `${REPO}bench/peers`;
const WARM_TARGET_MS = 100;
const CALL_TARGET = 0.8;

const { values } = parseArgs({
  options: { repeats: { type: "string", default: "5" }, smoke: { type: "boolean", default: false } },
});
const smoke = values.smoke === true;
const repeats = smoke ? 1 : Number(values.repeats);
const sequentialCalls = smoke ? 20 : 2000;
const concurrentCalls = smoke ? 32 : 8000;
const inFlight = 16;
const agentRuns = smoke ? 1 : 5;
const spawnRuns = smoke ? 1 : 3;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** Calls/s of `call` run `count` times, `parallel` at once. */
async function throughput(call: () => Promise<unknown>, count: number, parallel: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next++ < count) await call();
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

async function startBarePeer(socket: string): Promise<ChildProcess> {
  const child = spawn(PYTHON, [`${PEERS}/grpcio_echo.py`, "--socket", socket], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", () => resolve());
    child.once("exit", (code) => reject(new Error(`the grpcio peer exited with ${code}`)));
  });
  return child;
}

async function callBenchmark() {
  const dir = mkdtempSync(join(tmpdir(), "toolbridge-bench-"));
  const peer = await startBarePeer(join(dir, "bare.sock"));
  const bare = new pbWorker.ToolBridgeWorkerClient(
    `unix:${join(dir, "bare.sock")}`,
    grpc.credentials.createInsecure(),
  );
  const pool = new WorkerPool({
    size: 1,
    modules: ["worker_tools"],
    python: PYTHON,
    cwd: PEERS,
    preloadAgents: false,
  });
  await pool.start();
  const payload = "0123456789";
  const request: pb.ToolCallRequest = {
    sessionId: "",
    toolId: "echo",
    args: [],
    kwargs: { payload: encodeValue(payload) },
    requestId: "",
    timeoutMs: 30_000,
  };
  const bareCall = () =>
    new Promise<unknown>((resolve, reject) =>
      bare.callTool(request, (error, response) =>
        error === null ? resolve(response.result) : reject(error),
      ),
    );
  const poolCall = () => pool.call("echo", { payload });
  const rows: Record<string, { pool: number[]; bare: number[]; ratio: number[] }> = {
    sequential: { pool: [], bare: [], ratio: [] },
    [`concurrent x${inFlight}`]: { pool: [], bare: [], ratio: [] },
  };
  await throughput(bareCall, 200, 1);
  await throughput(poolCall, 200, 1);
  try {
    for (let r = 0; r < repeats; r++) {
      for (const [name, count, parallel] of [
        ["sequential", sequentialCalls, 1],
        [`concurrent x${inFlight}`, concurrentCalls, inFlight],
      ] as const) {
        const row = rows[name] as { pool: number[]; bare: number[]; ratio: number[] };
        // Alternating which goes first keeps a slow stretch of the machine from favouring one side.
        const first = r % 2 === 0;
        const b1 = first ? await throughput(bareCall, count, parallel) : 0;
        const p = await throughput(poolCall, count, parallel);
        const b = first ? b1 : await throughput(bareCall, count, parallel);
        row.pool.push(p);
        row.bare.push(b);
        row.ratio.push(p / b);
      }
    }
  } finally {
    bare.close();
    await pool.stop();
    peer.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

async function agentBenchmark() {
  const turns = join(mkdtempSync(join(tmpdir(), "toolbridge-bench-")), "turns.json");
  writeFileSync(
    turns,
    JSON.stringify([
      { next_thought: "Look it up.", next_tool_name: "lookup", next_tool_args: { key: "x" } },
      { next_thought: "Done.", next_tool_name: "finish", next_tool_args: {} },
      { reasoning: "lookup said so.", answer: "x" },
    ]),
  );
  const host = new ToolBridgeHost({
    host: "127.0.0.1",
    port: 0,
    logger: pino({ level: "silent" }),
    workers: 1,
    workerModule: "worker_tools",
    workerPool: { python: PYTHON, cwd: PEERS, env: { ...process.env, TOOLBRIDGE_LM: "" } },
  });
  host.registerTool(
    defineTool({
      name: "lookup",
      description: "Looks a key up.",
      parameters: z.object({ key: z.string() }),
      handler: ({ key }) => key,
    }),
  );
  const started = performance.now();
  const address = await host.start();
  const poolStartMs = performance.now() - started;
  const { id: sessionId } = await host.createSession();
  while (!host.workers.state().workers.every((w) => w.agentsReady))
    await new Promise((r) => setTimeout(r, 20));
  const options = { sessionId, tools: ["lookup"], inputs: { question: "x?" }, script: turns };
  const firstToolCall = async (
    run: (onEvent: (e: { kind: string }) => void) => Promise<{ status: string }>,
  ) => {
    const t0 = performance.now();
    let first = Number.NaN;
    const result = await run((event) => {
      if (event.kind === "tool_call" && Number.isNaN(first)) first = performance.now() - t0;
    });
    if (result.status !== "succeeded" || Number.isNaN(first))
      throw new Error(`agent run failed: ${JSON.stringify(result)}`);
    return first;
  };
  const warm: number[] = [];
  const spawned: number[] = [];
  try {
    await firstToolCall((onEvent) => host.workers.runAgent({ ...options, onEvent })); // imports on first use
    for (let i = 0; i < agentRuns; i++)
      warm.push(await firstToolCall((onEvent) => host.workers.runAgent({ ...options, onEvent })));
    for (let i = 0; i < spawnRuns; i++) {
      spawned.push(
        await firstToolCall((onEvent) =>
          runPythonAgent({
            ...options,
            address: address.target,
            python: PYTHON,
            env: { ...process.env, TOOLBRIDGE_LM: "" },
            onEvent,
          }),
        ),
      );
    }
  } finally {
    await host.stop();
  }
  return { poolStartMs, warm, spawned };
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en") : n.toFixed(1));

const calls = await callBenchmark();
const agents = await agentBenchmark();
const lines = [
  "",
  `Python workers (${repeats} repeats${smoke ? ", smoke counts: figures mean nothing" : ""})`,
  "",
  "| workload | pool (TS→Python) | bare grpc-js ↔ grpcio | ratio (min-max) | target |",
  "|---|---|---|---|---|",
];
const results: Record<string, unknown> = { calls: {}, agents };
for (const [name, row] of Object.entries(calls)) {
  const ratio = spread(row.ratio);
  const met = ratio.median >= CALL_TARGET ? "met" : "MISSED";
  lines.push(
    `| echo 10 B, ${name} | ${fmt(median(row.pool))} calls/s | ${fmt(median(row.bare))} calls/s | ` +
      `${ratio.median.toFixed(2)}x (${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)}) | ≥${CALL_TARGET}x ${met} |`,
  );
  (results.calls as Record<string, unknown>)[name] = { ...row, ratio };
}
const warm = spread(agents.warm);
const spawned = spread(agents.spawned);
lines.push(
  "",
  "| agent start: TS call → first tool call | median (min-max) | target |",
  "|---|---|---|",
  `| warm worker (host.workers.runAgent) | ${fmt(warm.median)} ms (${fmt(warm.min)}-${fmt(warm.max)}) | ≤${WARM_TARGET_MS} ms ${warm.median <= WARM_TARGET_MS ? "met" : "MISSED"} |`,
  `| spawned interpreter (runPythonAgent) | ${fmt(spawned.median)} ms (${fmt(spawned.min)}-${fmt(spawned.max)}) |  |`,
  `| spawned / warm | ${(spawned.median / warm.median).toFixed(1)}x |  |`,
  "",
  `pool of 1 worker started in ${fmt(agents.poolStartMs)} ms (DSPy is imported after it is ready)`,
);
console.log(lines.join("\n"));
mkdirSync(`${REPO}bench/results`, { recursive: true });
const file = `${REPO}bench/results/workers-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
writeFileSync(file, JSON.stringify({ smoke, repeats, ...results }, null, 1));
console.log(`\nsamples written to ${file}`);
