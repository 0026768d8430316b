// Tool faults contained, for a CLI host and for a host embedded as the README shows it:
// a tool throwing from a timer and a tool leaking a rejected promise fail their own calls
// with ToolExecutionError, faults after a call ended are logged saying how it had ended,
// and the host keeps serving. A tool that ignores its abort signal keeps its concurrency
// slot until it really settles, and the overdue gauge shows it meanwhile.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import { type HostProcess, REPO_ROOT, startEmbeddedHost, startHost } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";

const FAULT_TOOLS = `${REPO_ROOT}testdata/tools/fault-tools.ts`;
const SHOP_TOOLS = `${REPO_ROOT}examples/tools/shop-tools.ts`;
const EMBEDDED = `${REPO_ROOT}packages/server/test/support/embedded-host.ts`;

/** A log line of a fault charged to a tool call (tools/faults.ts). */
interface FaultLine {
  readonly msg: string;
  readonly tool?: string;
  readonly call?: string;
  readonly err?: { readonly message?: string };
}

const hosts: [string, () => Promise<HostProcess>][] = [
  ["a CLI host", () => startHost({}, [FAULT_TOOLS, SHOP_TOOLS])],
  ["an embedded host", () => startEmbeddedHost(EMBEDDED)],
];

for (const [kind, start] of hosts) {
  describe(`tool faults contained: ${kind}`, () => {
    let host: HostProcess;
    let client: ToolBridgeClient;

    before(async () => {
      host = await start();
      client = new ToolBridgeClient(host.target);
      await client.initializeSession();
    });
    after(async () => {
      client.close();
      assert.equal(await host.stop(), 0, host.stderr());
    });

    /** The host's log lines about faults escaping `tool` (pino's JSON lines on stderr). */
    const faultLines = (tool: string): FaultLine[] =>
      host
        .stderr()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as FaultLine)
        .filter((line) => line.tool === tool && line.call !== undefined);

    const stillServing = async () => {
      assert.equal(await client.executeTool("calculate", { expression: "6 * 7" }), 42);
      assert.equal(host.process.exitCode, null, host.stderr());
    };

    it("fails the call of a tool that throws from a timer, and keeps serving", async () => {
      await assert.rejects(
        client.executeTool("throw_from_timer", {}),
        fails(
          ErrorType.ToolExecutionError,
          (e) => /boom from a timer/.test(e.message) && e.details.escaped === "true",
        ),
      );
      await stillServing();
      // The log line and the answer travel on different pipes: the line may come second.
      await waitUntil(
        () => /tool 'throw_from_timer' let an exception escape/.test(host.stderr()),
        "the fault is logged",
      );
    });

    it("fails the call of a tool that leaks a rejected promise, and keeps serving", async () => {
      await assert.rejects(
        client.executeTool("leak_rejection", {}),
        fails(
          ErrorType.ToolExecutionError,
          (e) => /leaked rejection/.test(e.message) && e.details.exception === "TypeError",
        ),
      );
      await stillServing();
      await waitUntil(
        () => /tool 'leak_rejection' let a promise rejection escape/.test(host.stderr()),
        "the fault is logged",
      );
    });

    it("logs faults that come after the call completed as such, and keeps serving", async () => {
      assert.equal(await client.executeTool("throw_after_return", {}), "returned");
      await waitUntil(() => faultLines("throw_after_return").length === 2, "both late faults are logged");
      const lines = faultLines("throw_after_return");
      assert.deepEqual(lines.map((line) => [line.err?.message, line.call]).sort(), [
        ["rejected after the call ended", "after-success"],
        ["thrown after the call ended", "after-success"],
      ]);
      for (const line of lines) {
        assert.match(line.msg, /its call had already completed successfully \(this log is the only record/);
        assert.doesNotMatch(line.msg, /fails with ToolExecutionError/);
      }
      await stillServing();
    });

    it("logs a fault that comes after the call failed with the call's error type", async () => {
      await assert.rejects(
        client.executeTool("throw_after_failing", {}),
        fails(ErrorType.ToolExecutionError, (e) => e.message === "failed first"),
      );
      await waitUntil(() => faultLines("throw_after_failing").length === 1, "the late fault is logged");
      const [line] = faultLines("throw_after_failing");
      assert.equal(line?.call, "after-failure");
      assert.match(line?.msg ?? "", /its call had already failed with ToolExecutionError/);
      await stillServing();
    });
  });
}

describe("a tool that ignores its abort signal", () => {
  let host: HostProcess;
  let client: ToolBridgeClient;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "toolbridge-stubborn-"));
    host = await startHost({ "metrics-port": 0 }, [FAULT_TOOLS]);
    client = new ToolBridgeClient(host.target);
    await client.initializeSession();
  });
  after(async () => {
    client.close();
    await host.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const overdue = async (): Promise<number> => {
    const text = await (await fetch(host.metricsUrl as string)).text();
    const line = text.split("\n").find((l) => l.startsWith('toolbridge_tool_calls_overdue{tool="stubborn"}'));
    return line === undefined ? 0 : Number(line.split(" ").pop());
  };

  it("keeps its concurrency slot after its timeout until it really settles", async () => {
    const release = join(dir, "release");
    await assert.rejects(client.executeTool("stubborn", { path: release }), fails(ErrorType.Timeout));
    // Still running: its slot (maxConcurrentCalls 1) is taken, and the gauge says so.
    await assert.rejects(
      client.executeTool("stubborn", { path: release }),
      fails(ErrorType.ConcurrencyLimitExceeded),
    );
    assert.equal(await overdue(), 1);
    writeFileSync(release, "");
    await waitUntil(async () => (await overdue()) === 0, "the stubborn tool settles");
    assert.equal(await client.executeTool("stubborn", { path: release }), "settled");
  });
});

describe("faults without attribution (attributeToolFaults false)", () => {
  it("still contains them: the host logs the fault and keeps serving; the call ends at its timeout", async () => {
    const host = await startHost({ "attribute-tool-faults": "false", "tool-timeout-ms": 300 }, [
      FAULT_TOOLS,
      SHOP_TOOLS,
    ]);
    const client = new ToolBridgeClient(host.target);
    await client.initializeSession();
    await assert.rejects(client.executeTool("throw_from_timer", {}), fails(ErrorType.Timeout));
    await waitUntil(
      () => /an exception escaped outside any tool call; the host keeps serving/.test(host.stderr()),
      "the unattributed fault is logged",
    );
    assert.equal(await client.executeTool("calculate", { expression: "1 + 1" }), 2);
    client.close();
    assert.equal(await host.stop(), 0, host.stderr());
  });
});
