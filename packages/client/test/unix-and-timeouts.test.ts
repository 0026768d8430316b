// The TS client against a host on a Unix domain socket, and against a host that stops
// answering (SIGSTOP): the default timeout ends its calls.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BridgeError, ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { startHost } from "../../server/test/support/host-process.js";

function deadlineExceeded(error: unknown): boolean {
  assert.ok(error instanceof BridgeError, `expected BridgeError, got ${String(error)}`);
  assert.equal(error.type, ErrorType.CommunicationError, error.message);
  assert.equal(error.details.grpc_code, "DEADLINE_EXCEEDED", error.message);
  return true;
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

  it("refuses a default timeout that is not a positive number of milliseconds", () => {
    assert.throws(() => new ToolBridgeClient("127.0.0.1:1", { defaultTimeoutMs: 0 }), RangeError);
  });
});
