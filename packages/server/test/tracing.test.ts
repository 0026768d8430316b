// Tracing from the TypeScript side (docs/tracing.md): a host with tracing off loads no
// OpenTelemetry SDK at all (the modules its process resolved are recorded), and the
// TypeScript client sends the active trace context, which a tracing host continues into the
// tool's code and through a tool that calls another tool. The spans' parents and attributes
// across both languages are checked against a real OTLP receiver in python/tests/test_tracing.py.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { context, trace } from "@opentelemetry/api";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ToolBridgeClient } from "@toolbridge/client";
import { type HostProcess, REPO_ROOT, startHost, TEST_TOOLS } from "./support/host-process.ts";

const RECORDER = fileURLToPath(new URL("./support/record-modules.mjs", import.meta.url));
const TRACING_TOOLS = `${REPO_ROOT}testdata/tools/tracing-tools.ts`;
/** A tracing host's spans go nowhere here: the test reads what the tools saw. */
const NO_EXPORT = { OTEL_TRACES_EXPORTER: "none" };

/** The module URLs a host resolved while it started, served one call and stopped. */
async function modulesResolved(flags: Record<string, string>): Promise<string[]> {
  const directory = mkdtempSync(join(tmpdir(), "toolbridge-modules-"));
  const file = join(directory, "modules.txt");
  try {
    const host = await startHost(flags, [TEST_TOOLS], {
      nodeArgs: ["--import", RECORDER],
      env: { ...NO_EXPORT, TOOLBRIDGE_RECORD_MODULES: file },
    });
    const client = new ToolBridgeClient(host.target);
    try {
      await client.initializeSession();
      assert.equal(await client.executeTool("add", { a: 2, b: 3 }), 5);
    } finally {
      client.close();
      assert.equal(await host.stop(), 0, host.stderr());
    }
    return readFileSync(file, "utf8").trim().split("\n");
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

const isTracingCode = (url: string) =>
  /\/@opentelemetry\/(sdk-|exporter-|instrumentation)/.test(url) ||
  /\/dist\/tracing\/(spans|sdk)\.js$/.test(url);

describe("tracing off by default", () => {
  it("a host not asked to trace resolves no OpenTelemetry SDK, exporter or span module", async () => {
    const modules = await modulesResolved({});
    assert.ok(
      modules.some((url) => url.endsWith("/dist/host.js")),
      "the recorder saw the host's modules",
    );
    assert.deepEqual(modules.filter(isTracingCode), []);
  });

  it("a host asked to trace does load them (what the check above would see)", async () => {
    const modules = await modulesResolved({ tracing: "true" });
    for (const expected of [
      "/dist/tracing/spans.js",
      "/dist/tracing/sdk.js",
      "/@opentelemetry/sdk-trace-node/",
    ]) {
      assert.ok(
        modules.some((url) => url.includes(expected)),
        `${expected} in ${modules.filter(isTracingCode).join(", ")}`,
      );
    }
  });
});

describe("the TypeScript client's trace context", () => {
  const provider = new NodeTracerProvider();
  let host: HostProcess;
  let client: ToolBridgeClient;

  before(async () => {
    provider.register();
    host = await startHost({ tracing: "true" }, [TRACING_TOOLS], { env: NO_EXPORT });
    client = new ToolBridgeClient(host.target);
    await client.initializeSession();
  });

  after(async () => {
    client.close();
    assert.equal(await host.stop(), 0, host.stderr());
    await provider.shutdown();
  });

  it("the host continues the caller's trace: the tool's code runs in a span of it", async () => {
    const span = trace.getTracer("tracing.test").startSpan("caller");
    const seen = (await context.with(trace.setSpan(context.active(), span), () =>
      client.executeTool("active_span", {}),
    )) as { traceId: string; spanId: string };
    span.end();
    assert.equal(seen.traceId, span.spanContext().traceId);
    assert.notEqual(seen.spanId, span.spanContext().spanId, "the tool runs in the host's own span");
  });

  it("a tool calling another tool through the client keeps the trace", async () => {
    const span = trace.getTracer("tracing.test").startSpan("caller");
    const seen = (await context.with(trace.setSpan(context.active(), span), () =>
      client.executeTool("call_through_client", { tool: "active_span" }),
    )) as { traceId: string };
    span.end();
    assert.equal(seen.traceId, span.spanContext().traceId);
  });

  it("without an active span the client sends no context: the host starts a trace of its own", async () => {
    const seen = (await client.executeTool("active_span", {})) as { traceId: string };
    assert.match(seen.traceId, /^[0-9a-f]{32}$/);
  });
});
