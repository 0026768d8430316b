// Python worker tools through the host's call engine, against the real host CLI with a real
// worker: their output schemas are published and their results keep the kinds the worker
// sent (read from the raw messages: a decoded JS number cannot tell 3.0 from 3), a result
// against its annotation fails as a TypeScript tool's does, and the engine owns their timeouts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ToolBridgeClient } from "@toolbridge/client";
import { encodeValue, pb, type pbValues } from "@toolbridge/core";
import { type HostProcess, startHost } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";
import { POOL_TOOLS, PYTHON } from "./support/workers.js";

/** The kinds of a Value as a plain tree, keeping the number of a float: {ratio: "float 1"}. */
function kinds(value: pbValues.Value | undefined): unknown {
  const kind = value?.kind;
  switch (kind?.$case) {
    case "intValue":
      return `int ${kind.value}`;
    case "floatValue":
      return `float ${kind.value}`;
    case "stringValue":
      return kind.value;
    case "listValue":
      return kind.value.values.map(kinds);
    case "mapValue":
      return Object.fromEntries(kind.value.entries.map((e) => [e.key, kinds(e.value)]));
    default:
      return kind?.$case;
  }
}

function unary<Req, Res>(
  invoke: (req: Req, callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

describe("Python worker tools through the call engine", () => {
  let host: HostProcess;
  let client: ToolBridgeClient;
  let stub: pb.ToolBridgeClient;
  let sessionId = "";

  before(async () => {
    host = await startHost(
      {
        workers: 1,
        "worker-module": POOL_TOOLS,
        "worker-python": PYTHON,
        "worker-preload-agents": "false",
      },
      [],
    );
    client = new ToolBridgeClient(host.target);
    sessionId = (await client.initializeSession()).sessionId;
    stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
  });
  after(async () => {
    stub.close();
    client.close();
    assert.equal(await host.stop(), 0);
  });

  const request = (toolId: string, kwargs: Record<string, unknown> = {}): pb.ToolCallRequest => ({
    sessionId,
    toolId,
    args: [],
    kwargs: Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, encodeValue(v)])),
    requestId: "",
    timeoutMs: 0,
  });
  const execute = (toolId: string, kwargs: Record<string, unknown> = {}) =>
    unary<pb.ToolCallRequest, pb.ToolCallResponse>(stub.executeTool.bind(stub), request(toolId, kwargs));

  it("publishes the output schema pydantic made from the return annotation", async () => {
    const specs = await client.listTools();
    assert.deepEqual(specs.find((s) => s.name === "as_float")?.outputSchema, { type: "number" });
    assert.deepEqual(specs.find((s) => s.name === "typed_measurements")?.outputSchema, {
      type: "object",
      additionalProperties: { type: "array", items: { type: "number" } },
    });
    assert.deepEqual(specs.find((s) => s.name === "float_chunks")?.outputSchema, { type: "number" });
    assert.equal(specs.find((s) => s.name === "echo")?.outputSchema, undefined);
  });

  it("sends a float result as a float, integral or not, and an int as an int", async () => {
    assert.equal(kinds((await execute("as_float", { x: 3 })).result), "float 3");
    // The function returns the int 2; its annotation says float, so pydantic makes it one.
    assert.equal(kinds((await execute("half_as_float", { x: 5 })).result), "float 2");
    assert.equal(kinds((await execute("add", { a: 2, b: 3 })).result), "int 5");
    assert.equal(await client.executeTool("as_float", { x: 3 }), 3);
  });

  it("keeps every kind in nested results, where a schema says it and where none does", async () => {
    assert.deepEqual(kinds((await execute("measurements")).result), {
      ratio: "float 1",
      count: "int 3",
      samples: ["float 2", "float 2.5", "int 4"],
      nested: { total: "float 10" },
    });
    assert.deepEqual(kinds((await execute("typed_measurements")).result), {
      a: ["float 1", "float 2"],
      b: ["float 3"],
    });
  });

  it("keeps the kinds of a stream's chunks, streamed, collected into a plain call, and in a batch", async () => {
    const streamed: unknown[] = [];
    let error: pb.ErrorInfo | undefined;
    const stream = stub.streamTool({
      ...request("float_chunks", { n: 2, then_text: true }),
      streamId: "",
      idleTimeoutMs: 0,
    });
    for await (const chunk of stream as AsyncIterable<pb.ToolStreamChunk>) {
      if (chunk.content?.$case === "data") streamed.push(kinds(chunk.content.value));
      if (chunk.content?.$case === "error") error = chunk.content.value;
    }
    assert.deepEqual(streamed, ["float 0", "float 1"]);
    // The third chunk breaks the annotation: the stream ends with the error naming it.
    assert.equal(error?.type, "ToolExecutionError");
    assert.deepEqual([error?.details.reason, error?.details.chunk], ["output_schema", "2"]);
    // A streaming tool called as a plain call answers the list of its chunks.
    assert.deepEqual(kinds((await execute("float_chunks", { n: 2 })).result), ["float 0", "float 1"]);
    const batch = await unary<pb.BatchToolCallRequest, pb.BatchToolCallResponse>(
      stub.batchExecuteTools.bind(stub),
      {
        sessionId,
        batchId: "",
        items: [
          { index: 0, toolId: "as_float", args: [], kwargs: { x: encodeValue(7) }, timeoutMs: 0 },
          { index: 1, toolId: "float_chunks", args: [], kwargs: { n: encodeValue(1) }, timeoutMs: 0 },
        ],
        config: { parallel: true, stopOnError: false, maxParallel: 0 },
        requestId: "",
      },
    );
    assert.deepEqual(
      batch.results.map((r) => kinds(r.result)),
      ["float 7", ["float 0"]],
    );
  });

  it("fails a result against its annotation with ToolExecutionError naming the path, as for a TypeScript tool", async () => {
    await assert.rejects(
      client.executeTool("wrong_type", { x: 1 }),
      (e: unknown) =>
        e instanceof BridgeError &&
        e.type === "ToolExecutionError" &&
        e.details.reason === "output_schema" &&
        e.details.path === "$" &&
        /tool 'wrong_type' returned a result that does not match its output schema: \$: Input should be a valid integer/.test(
          e.message,
        ),
    );
    await assert.rejects(
      client.executeTool("wrong_nested"),
      (e: unknown) =>
        e instanceof BridgeError && e.type === "ToolExecutionError" && e.details.path === "$.a[1]",
    );
    // The host keeps serving the tool's next call.
    assert.equal(await client.executeTool("add", { a: 1, b: 1 }), 2);
  });

  it("times a call out by the tool's own timeout in the engine, and the worker stops the tool", async () => {
    await assert.rejects(
      client.executeTool("sleep_limited", { ms: 60_000, marker: "engine" }),
      (e: unknown) =>
        e instanceof BridgeError &&
        e.type === "Timeout" &&
        e.details.timeout === "total" &&
        e.details.timeout_ms === "300" &&
        e.details.backstop === undefined &&
        /tool 'sleep_limited' did not finish within 300 ms/.test(e.message),
    );
    await waitUntil(
      async () => ((await client.executeTool("cancellations")) as string[]).includes("sleep_limited:engine"),
      "the worker cancelled the tool",
      { tries: 600, intervalMs: 50 },
    );
  });

  it("ends a stream past its total budget in the engine, and the worker closes the generator", async () => {
    let error: pb.ErrorInfo | undefined;
    let chunks = 0;
    const stream = stub.streamTool({
      ...request("count", { n: 1_000_000, delay_ms: 5, marker: "engine-total" }),
      timeoutMs: 500,
      streamId: "",
      idleTimeoutMs: 0,
    });
    for await (const chunk of stream as AsyncIterable<pb.ToolStreamChunk>) {
      if (chunk.content?.$case === "data") chunks++;
      if (chunk.content?.$case === "error") error = chunk.content.value;
    }
    assert.ok(chunks > 0);
    assert.equal(error?.type, "Timeout");
    assert.deepEqual(
      [error?.details.timeout, error?.details.timeout_ms, error?.details.backstop],
      ["total", "500", undefined],
    );
    assert.match(error?.message ?? "", /ran past its total budget of 500 ms/);
    await waitUntil(
      async () => ((await client.executeTool("cancellations")) as string[]).includes("count:engine-total"),
      "the worker closed the generator",
      { tries: 600, intervalMs: 50 },
    );
  });
});
