// What a worker's socket and the hosts' private directories let through: a worker dials only
// the host it was started for, whatever a RunAgent names (anyone who can reach its socket can
// send one), and a starting host removes the directories that dead hosts left behind, never
// a live one's.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { pbWorker } from "@toolbridge/core";
import { ToolBridgeHost, WorkerPool } from "@toolbridge/server";
import { pino } from "pino";
import { poolOptions } from "./support/workers.js";

/** A TCP listener on loopback that records every connection made to it and answers nothing. */
async function recorder(): Promise<{ server: Server; address: string; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    server.emit("recorded");
    socket.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return { server, address: `127.0.0.1:${port}`, connections: () => connections };
}

/** The value of `flag` on the command line of process `pid`. */
function commandLineFlag(pid: number, flag: string): string | undefined {
  const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  const at = args.indexOf(flag);
  return at < 0 ? undefined : args[at + 1];
}

/** Every event of a RunAgent stream until it ends (or the caller cancels it). */
async function runAgentEvents(call: grpc.ClientReadableStream<pbWorker.AgentRunEvent>) {
  const events: pbWorker.AgentRunEvent[] = [];
  try {
    for await (const event of call as AsyncIterable<pbWorker.AgentRunEvent>) events.push(event);
  } catch (error) {
    if ((error as grpc.ServiceError).code !== grpc.status.CANCELLED) throw error;
  }
  return events;
}

/** A pid no process has now: one of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn("true");
  await once(child, "exit");
  return child.pid as number;
}

describe("worker isolation", () => {
  it("never dials an address a RunAgent names: only the host the worker was started for", async () => {
    const host = await recorder();
    const stranger = await recorder();
    const pool = new WorkerPool(
      poolOptions({
        hostAddress: host.address,
        env: { ...process.env, TOOLBRIDGE_TOKEN: "the-host-token", TOOLBRIDGE_LM: "" },
      }),
    );
    await pool.start();
    const [worker] = pool.state().workers;
    assert.ok(worker !== undefined);
    assert.equal(commandLineFlag(worker.pid, "--host-address"), host.address);
    // Anyone who can reach the worker's socket speaks to it directly, as the host does.
    const socket = commandLineFlag(worker.pid, "--socket") as string;
    const client = new pbWorker.ToolBridgeWorkerClient(`unix:${socket}`, grpc.credentials.createInsecure());
    const request: pbWorker.RunAgentRequest = {
      hostAddress: stranger.address,
      sessionId: "s",
      agentId: "",
      signature: "",
      tools: [],
      maxIters: 0,
      instructions: "",
      inputs: {},
      lm: "",
      script: "shop",
      lmFactory: "",
    };
    try {
      const refused = await runAgentEvents(client.runAgent(request));
      const finished = refused.at(-1)?.event;
      assert.equal(finished?.$case, "finished");
      const error = finished?.$case === "finished" ? finished.value.error : undefined;
      assert.equal(error?.type, "ValidationError");
      assert.equal(error?.details.field, "host_address");
      // The control: the same request without an address makes the worker dial its own host.
      const dialed = once(host.server, "recorded");
      const run = client.runAgent({ ...request, hostAddress: "" });
      const events = runAgentEvents(run);
      await dialed;
      run.cancel();
      await events;
      assert.ok(host.connections() >= 1);
      assert.equal(stranger.connections(), 0, "the worker connected to the address the request named");
    } finally {
      client.close();
      await pool.stop();
      host.server.close();
      stranger.server.close();
    }
  });

  it("removes the private directories of dead hosts on start, and keeps live ones and others", async () => {
    const dead = await deadPid();
    const sleeper = spawn("sleep", ["60"]);
    const made: string[] = [];
    const dir = (name: string) => {
      const path = join(tmpdir(), name);
      mkdirSync(path, { mode: 0o700 });
      made.push(path);
      return path;
    };
    const stale = dir(`toolbridge-workers-${dead}-Stale1`);
    writeFileSync(join(stale, "w1.sock"), "");
    dir(`toolbridge-host-${dead}-Stale2`);
    const ofLiveProcess = dir(`toolbridge-host-${sleeper.pid}-Alive1`);
    // A dead pid with a socket that still answers: a live host seen from another pid namespace.
    const answering = dir(`toolbridge-host-${dead}-Alive2`);
    const listener = createServer().listen(join(answering, "host.sock"));
    await once(listener, "listening");
    const unnamed = dir("toolbridge-workers-Other1");
    const host = new ToolBridgeHost({ host: "127.0.0.1", port: 0, logger: pino({ level: "silent" }) });
    try {
      await host.start();
      assert.deepEqual(
        made.map((path) => existsSync(path)),
        [false, false, true, true, true],
      );
    } finally {
      await host.stop();
      listener.close();
      sleeper.kill("SIGKILL");
      for (const path of [ofLiveProcess, answering, unnamed]) rmSync(path, { recursive: true, force: true });
    }
  });
});
