// The TS client against a host on a Unix domain socket, and against a host that stops
// answering (SIGSTOP): the default timeout ends its calls, every unary RPC included, but not
// a batch without a timeout of its own.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BridgeError, ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { fails } from "../../server/test/support/assertions.js";
import { startHost } from "../../server/test/support/host-process.js";
import { waitUntil } from "../../server/test/support/wait.js";

function deadlineExceeded(error: unknown): boolean {
  assert.ok(error instanceof BridgeError, `expected BridgeError, got ${String(error)}`);
  assert.equal(error.type, ErrorType.CommunicationError, error.message);
  assert.equal(error.details.grpc_code, "DEADLINE_EXCEEDED", error.message);
  return true;
}

/** DEADLINE_EXCEEDED at the client's default timeout (1 s in these tests), named in the message. */
function atTheDefaultTimeout(error: unknown): boolean {
  deadlineExceeded(error);
  assert.match((error as Error).message, /within 1000 ms \(the client's defaultTimeoutMs\)/);
  return true;
}

/** Only a hang guard: a call still pending after it fails the test, however long it took. */
const HANG_GUARD_MS = 60_000;

async function guarded<T>(call: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${HANG_GUARD_MS} ms`)), HANG_GUARD_MS);
  });
  try {
    return await Promise.race([call, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe("the client and where the host is", () => {
  it("dials a host listening on a Unix domain socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "toolbridge-ts-"));
    const address = `unix:${join(dir, "host.sock")}`;
    const host = await startHost({ host: address });
    const client = new ToolBridgeClient(host.target);
    try {
      assert.equal(host.target, address);
      assert.ok(statSync(join(dir, "host.sock")).isSocket());
      await client.initializeSession();
      assert.equal(await client.executeTool("add", { a: 2, b: 3 }), 5);
      const chunks = [];
      for await (const chunk of client.streamTool("count", { n: 3 })) chunks.push(chunk);
      assert.deepEqual(chunks, [{ i: 0 }, { i: 1 }, { i: 2 }]);
    } finally {
      client.close();
      assert.equal(await host.stop(), 0, host.stderr());
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ends calls to a host that stopped answering at the default timeout", async () => {
    const host = await startHost();
    const client = new ToolBridgeClient(host.target, { defaultTimeoutMs: 300 });
    try {
      assert.equal(client.defaultTimeoutMs, 300);
      await client.initializeSession();
      assert.equal(await client.executeTool("add", { a: 1, b: 2 }), 3);
      host.process.kill("SIGSTOP");
      await assert.rejects(client.executeTool("add", { a: 1, b: 2 }), deadlineExceeded);
      await assert.rejects(async () => {
        for await (const _ of client.streamTool("count", { n: 3 })) {
          // nothing arrives
        }
      }, deadlineExceeded);
      host.process.kill("SIGCONT");
      assert.equal(await client.executeTool("add", { a: 2, b: 2 }), 4);
    } finally {
      host.process.kill("SIGCONT");
      client.close();
      await host.stop();
    }
  });

  it("ends every unary RPC to a host that stopped answering at the default timeout", async () => {
    const host = await startHost();
    const client = new ToolBridgeClient(host.target, { defaultTimeoutMs: 1000 });
    const newcomer = new ToolBridgeClient(host.target, { defaultTimeoutMs: 1000 });
    try {
      await client.initializeSession();
      await client.setVariable("plan", ["search"]);
      host.process.kill("SIGSTOP");
      try {
        await assert.rejects(guarded(client.listTools()), atTheDefaultTimeout);
        await assert.rejects(guarded(client.setVariable("plan", [])), atTheDefaultTimeout);
        await assert.rejects(guarded(client.getVariable("plan")), atTheDefaultTimeout);
        await assert.rejects(guarded(client.listVariables()), atTheDefaultTimeout);
        await assert.rejects(guarded(client.deleteVariable("plan")), atTheDefaultTimeout);
        await assert.rejects(guarded(client.sessionInfo()), atTheDefaultTimeout);
        await assert.rejects(guarded(client.heartbeat()), atTheDefaultTimeout);
        await assert.rejects(guarded(client.getMetrics()), atTheDefaultTimeout);
        await assert.rejects(guarded(newcomer.initializeSession()), atTheDefaultTimeout);
      } finally {
        host.process.kill("SIGCONT");
      }
      // The host serves again. (The writes that failed may have been applied when it woke up:
      // their requests were in its socket; a deadline does not say whether a call ran.)
      assert.ok((await client.listTools()).some((tool) => tool.name === "add"));
    } finally {
      host.process.kill("SIGCONT");
      client.close();
      newcomer.close();
      await host.stop();
    }
  });

  it("runs a batch without a timeout past the default timeout", async () => {
    const host = await startHost();
    const client = new ToolBridgeClient(host.target, { defaultTimeoutMs: 1000 });
    const dir = mkdtempSync(join(tmpdir(), "toolbridge-batch-"));
    const release = join(dir, "release");
    try {
      await client.initializeSession();
      const batch = client
        .executeBatch([{ toolId: "wait_for_file", kwargs: { path: release, tag: "ts-batch" } }])
        .catch((error: unknown) => error);
      await waitUntil(
        async () => {
          const events = (await client.executeTool("events", { tag: "ts-batch" })) as { event: string }[];
          return events.some((e) => e.event === "started");
        },
        "the batch's call started",
        { tries: 250 },
      );
      // A call sent after the batch started fails at the default timeout: once it has, that
      // much time has passed, and a batch bounded by it would have failed too.
      await assert.rejects(
        client.executeTool("slow", { ms: 60_000, tag: "ts-clock" }),
        fails(ErrorType.Timeout),
      );
      writeFileSync(release, "");
      assert.deepEqual(await guarded(batch), ["released"]);
    } finally {
      client.close();
      await host.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a default timeout that is not a positive number of milliseconds", () => {
    for (const defaultTimeoutMs of [0, -1, Number.NaN]) {
      assert.throws(
        () => new ToolBridgeClient("127.0.0.1:1", { defaultTimeoutMs }),
        (e: unknown) =>
          e instanceof BridgeError &&
          e.type === ErrorType.ValidationError &&
          e.details.field === "defaultTimeoutMs" &&
          /positive number of milliseconds/.test(e.message),
      );
    }
  });
});
