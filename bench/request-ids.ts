/**
 * What a client-chosen request id costs a call (docs/replay.md):
 *
 * 1. The call's fingerprint alone (`callFingerprint`: the request re-encoded, SHA-256),
 *    in-process, for a small call, one with ten keyword arguments and one with 64 KiB of
 *    arguments: CPU microseconds per fingerprint.
 * 2. Whole calls: sequential `add` calls from the TypeScript client to a host (the CLI on
 *    the memory store, or on the Redis store with `--redis <url>`), without a request id
 *    and with a fresh one each, in alternating rounds: the host's CPU time per call (from
 *    /proc, so Linux only), which a loaded machine disturbs less than calls per second.
 *
 *   node --import tsx bench/request-ids.ts [--rounds 5] [--calls 2000] [--redis redis://...]
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ToolBridgeClient } from "@toolbridge/client";
import { encodeValue } from "@toolbridge/core";
import type { CallRequest } from "../packages/server/src/tools/engine.js";
import { callFingerprint } from "../packages/server/src/tools/replay.js";
import { startHost } from "../packages/server/test/support/host-process.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    calls: { type: "string", default: "2000" },
    redis: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const calls = Number(values.calls);

function request(args: unknown[], kwargs: Record<string, unknown>): CallRequest {
  return {
    sessionId: "s",
    toolId: "tool",
    args: args.map((arg) => encodeValue(arg)),
    kwargs: Object.fromEntries(Object.entries(kwargs).map(([name, value]) => [name, encodeValue(value)])),
    timeoutMs: 0,
  };
}

function fingerprints(): void {
  const shapes: [string, CallRequest, number][] = [
    ["add(k, 1)", request([7, 1], {}), 200_000],
    [
      "ten short kwargs",
      request([], Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, `v${i}`]))),
      100_000,
    ],
    ["64 KiB of arguments", request([new Uint8Array(65_536)], { note: "x".repeat(100) }), 5_000],
  ];
  for (const [name, req, count] of shapes) {
    for (let i = 0; i < count / 10; i++) callFingerprint(req);
    const started = process.cpuUsage();
    for (let i = 0; i < count; i++) callFingerprint(req);
    const used = process.cpuUsage(started);
    console.log(`fingerprint  ${name.padEnd(20)} ${((used.user + used.system) / count).toFixed(2)} us CPU`);
  }
}

/** CPU milliseconds process `pid` has used (utime + stime, in 10 ms ticks). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The host's CPU microseconds per call over `calls` sequential calls. */
async function hostCpu(client: ToolBridgeClient, pid: number, withId: boolean): Promise<number> {
  const before = cpuMs(pid);
  for (let k = 0; k < calls; k++) {
    await client.executeTool("add", {}, { args: [k, 1], ...(withId ? { requestId: randomUUID() } : {}) });
  }
  return ((cpuMs(pid) - before) * 1000) / calls;
}

async function wholeCalls(): Promise<void> {
  const host = await startHost(values.redis === undefined ? {} : { store: values.redis });
  const client = new ToolBridgeClient(host.target);
  try {
    await client.initializeSession();
    const pid = host.process.pid ?? 0;
    await hostCpu(client, pid, false);
    await hostCpu(client, pid, true);
    for (let round = 1; round <= rounds; round++) {
      const plain = await hostCpu(client, pid, false);
      const keyed = await hostCpu(client, pid, true);
      console.log(
        `round ${round}  host CPU per call: without id ${plain.toFixed(0)} us, with id ${keyed.toFixed(0)} us ` +
          `(${(keyed / plain).toFixed(2)}x)`,
      );
    }
  } finally {
    client.close();
    await host.stop();
  }
}

fingerprints();
await wholeCalls();
