// The call path over the wire, against the real host CLI: output schemas (checked, and
// deciding the float kind of numbers), batch items without indexes, and a stream's idle
// timeout versus its total budget. The kinds of values are read from the raw messages,
// since a decoded JS number cannot tell 1.0 from 1.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, type NativeValue, ToolBridgeClient } from "@toolbridge/client";
import { encodeValue, pb, type pbValues } from "@toolbridge/core";
import { defineTool, ToolBridgeHost } from "@toolbridge/server";
import { pino } from "pino";
import { z } from "zod";
import { type HostProcess, startHost } from "./support/host-process.js";

/** The kinds of a Value as a plain tree, keeping the number of a float: {ratio: "float 1"}. */
function kinds(value: pbValues.Value | undefined): unknown {
  const kind = value?.kind;
  switch (kind?.$case) {
    case "intValue":
      return `int ${kind.value}`;
    case "floatValue":
      return `float ${kind.value}`;
    case "bigIntValue":
      return `big_int ${kind.value.length} digits`;
    case "stringValue":
      return kind.value;
    case "nullValue":
      return null;
    case "listValue":
      return kind.value.values.map(kinds);
    case "mapValue":
      return Object.fromEntries(kind.value.entries.map((e) => [e.key, kinds(e.value)]));
    default:
      return kind?.$case;
  }
}

const MEASURE_KINDS = {
  ratio: "float 1",
  huge: "float 1e+300",
  count: "int 3",
  samples: ["float 1", "float 2.5"],
  byName: { a: "float 2" },
  pair: ["int 4", "float 4"],
  maybe: "float 7",
  shapes: [
    { kind: "circle", radius: "float 2" },
    { kind: "grid", cells: "int 9" },
  ],
  tree: { value: "float 1", children: [{ value: "float 2", children: [] }] },
  untyped: "int 5",
};
const READINGS_KINDS = [
  { i: "int 0", x: "float 1" },
  { i: "int 1", x: "float 1e+300" },
];

function isBridgeError(type: string, check: (e: BridgeError) => void = () => {}) {
  return (error: unknown) => {
    assert.ok(error instanceof BridgeError, `expected BridgeError, got ${String(error)}`);
    assert.equal(error.type, type, error.message);
    check(error);
    return true;
  };
}

function unary<Req, Res>(
  invoke: (req: Req, callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

let host: HostProcess;
let client: ToolBridgeClient;
before(async () => {
  host = await startHost();
  client = new ToolBridgeClient(host.target);
  await client.initializeSession();
});
after(async () => {
  client.close();
  assert.equal(await host.stop(), 0);
});

describe("output schemas and batch indexes against the real host", () => {
  let stub: pb.ToolBridgeClient;
  let sessionId: string;

  before(() => {
    sessionId = client.sessionId as string;
    stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
  });
  after(() => stub.close());

  const call = (toolId: string): pb.ToolCallRequest => ({
    sessionId,
    toolId,
    args: [],
    kwargs: {},
    requestId: "",
    timeoutMs: 0,
  });
  const item = (toolId: string, index?: number): pb.ToolCallItem => ({
    index,
    toolId,
    args: [],
    kwargs: { a: encodeValue(index ?? 0), b: encodeValue(1) },
    timeoutMs: 0,
  });
  const batch = (items: pb.ToolCallItem[]) =>
    unary<pb.BatchToolCallRequest, pb.BatchToolCallResponse>(stub.batchExecuteTools.bind(stub), {
      sessionId,
      batchId: "",
      items,
      config: { parallel: true, stopOnError: false, maxParallel: 0 },
      requestId: "",
    });

  it("exports the output schema in the tool's spec", async () => {
    const specs = await client.listTools();
    const measure = specs.find((s) => s.name === "measure");
    const properties = measure?.outputSchema?.properties as Record<string, { type?: unknown }> | undefined;
    assert.equal(properties?.ratio?.type, "number");
    assert.equal(properties?.count?.type, "integer");
    const readings = specs.find((s) => s.name === "readings");
    assert.equal(readings?.streaming, true);
    assert.deepEqual(readings?.outputSchema?.required, ["i", "x"]);
    assert.equal(
      specs.find((s) => s.name === "add")?.outputSchema,
      undefined,
      "a tool without an output schema has none in its spec",
    );
  });

  it("keeps the float kind the output schema declares, through ExecuteTool, StreamTool and a batch", async () => {
    const response = await unary<pb.ToolCallRequest, pb.ToolCallResponse>(
      stub.executeTool.bind(stub),
      call("measure"),
    );
    assert.equal(response.success, true, response.error?.message);
    assert.deepEqual(kinds(response.result), MEASURE_KINDS);

    const chunks: pb.ToolStreamChunk[] = [];
    for await (const chunk of stub.streamTool({ ...call("readings"), streamId: "", idleTimeoutMs: 0 })) {
      chunks.push(chunk as pb.ToolStreamChunk);
    }
    assert.deepEqual(
      chunks.map((c) => (c.content?.$case === "data" ? kinds(c.content.value) : c.content?.$case)),
      [...READINGS_KINDS, "complete"],
    );

    const batched = await batch([
      { ...item("measure"), kwargs: {} },
      { ...item("readings"), kwargs: {} },
    ]);
    assert.equal(batched.success, true, batched.error?.message);
    assert.deepEqual(
      batched.results.map((r) => kinds(r.result)),
      // A streaming tool called in a batch answers the list of its chunks.
      [MEASURE_KINDS, READINGS_KINDS],
    );
  });

  it("reports a result or a chunk that breaks the output schema as ToolExecutionError naming the path", async () => {
    await assert.rejects(
      client.executeTool("bad_output"),
      isBridgeError(ErrorType.ToolExecutionError, (e) => {
        assert.match(e.message, /does not match its output schema: \$\.order\.total: /);
        assert.equal(e.details.path, "$.order.total");
        assert.equal(e.details.reason, "output_schema");
      }),
    );
    const received: NativeValue[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of client.streamTool("bad_chunk")) received.push(chunk);
      })(),
      isBridgeError(ErrorType.ToolExecutionError, (e) => {
        assert.match(e.message, /chunk 1 that does not match its output schema: \$\.i: /);
        assert.deepEqual([e.details.path, e.details.chunk], ["$.i", "1"]);
      }),
    );
    assert.deepEqual(received, [{ i: 0, x: 0.5 }]);
    // The host keeps serving.
    assert.equal(await client.executeTool("add", { a: 1, b: 2 }), 3);
  });

  it("takes an item's position as its index when it has none", async () => {
    const response = await batch([item("add"), item("add"), item("add")]);
    assert.equal(response.success, true, response.error?.message);
    assert.deepEqual(
      response.results.map((r) => [r.index, r.success]),
      [
        [0, true],
        [1, true],
        [2, true],
      ],
    );
    // The clients send no index at all.
    assert.deepEqual(
      await client.executeBatch([
        { toolId: "add", kwargs: { a: 1, b: 1 } },
        { toolId: "add", kwargs: { a: 2, b: 2 } },
      ]),
      [2, 4],
    );
  });

  it("mixes given and absent indexes as long as every item's index is unique", async () => {
    // Indexes 5, (position) 1 and 0: unique, so the batch runs; results keep request order.
    const mixed = await batch([item("add", 5), item("add"), item("add", 0)]);
    assert.equal(mixed.success, true, mixed.error?.message);
    assert.deepEqual(
      mixed.results.map((r) => [r.index, kinds(r.result)]),
      [
        [5, "int 6"],
        [1, "int 1"],
        [0, "int 1"],
      ],
    );
    // An item without an index at position 0 and one that says index 0: refused before anything runs.
    const clash = await batch([item("add"), item("add", 0)]);
    assert.equal(clash.success, false);
    assert.equal(clash.error?.type, ErrorType.ValidationError);
    assert.match(
      clash.error?.message ?? "",
      /two batch items have index 0 \(an item without an index takes its position\)/,
    );
    assert.deepEqual(clash.error?.details, { field: "items.index", index: "0" });
  });
});

describe("stream timeouts against the real host", () => {
  async function drain(
    toolId: string,
    kwargs: Record<string, unknown>,
    options: { timeoutMs?: number; idleTimeoutMs?: number },
  ): Promise<{ chunks: number; error: unknown }> {
    let chunks = 0;
    try {
      for await (const _ of client.streamTool(toolId, kwargs, options)) chunks++;
      return { chunks, error: undefined };
    } catch (error) {
      return { chunks, error };
    }
  }

  it("ends a stream whose tool stalls at the idle timeout the call asks for", async () => {
    const { chunks, error } = await drain(
      "count",
      { n: 3, delay_ms: 30_000, tag: "idle-per-call" },
      { idleTimeoutMs: 200 },
    );
    assert.equal(chunks, 0);
    isBridgeError(ErrorType.Timeout, (e) => {
      assert.deepEqual(e.details, { timeout: "idle", timeout_ms: "200" });
      assert.match(e.message, /produced no chunk within 200 ms \(its idle timeout\)/);
    })(error);
    const events = (await client.executeTool("events", { tag: "idle-per-call" })) as { event: string }[];
    assert.ok(
      events.some((e) => e.event === "aborted"),
      "the stalled tool was aborted",
    );
  });

  it("applies the idle timeout the tool declares when the call asks for none", async () => {
    const { chunks, error } = await drain("ticks", { n: 2, delay_ms: 30_000 }, {});
    assert.equal(chunks, 0);
    isBridgeError(ErrorType.Timeout, (e) =>
      assert.deepEqual(e.details, { timeout: "idle", timeout_ms: "300" }),
    )(error);
  });

  it("lets a steady stream outlive its idle timeout, and ends it at its total budget", async () => {
    // A chunk every 5 ms never leaves the stream idle for 1 s; only the 2.5 s budget can end it.
    const { chunks, error } = await drain(
      "count",
      { n: 1_000_000, delay_ms: 5, tag: "total-per-call" },
      { idleTimeoutMs: 1_000, timeoutMs: 2_500 },
    );
    isBridgeError(ErrorType.Timeout, (e) => {
      assert.deepEqual(e.details, { timeout: "total", timeout_ms: "2500" });
      assert.match(e.message, /ran past its total budget of 2500 ms/);
    })(error);
    // It ran 2.5 s, longer than the idle timeout, producing all along.
    assert.ok(chunks > 1, `only ${chunks} chunk(s) arrived`);
    const events = (await client.executeTool("events", { tag: "total-per-call" })) as {
      event: string;
      detail: string;
    }[];
    assert.deepEqual(
      events.filter((e) => e.event === "aborted").map((e) => e.detail),
      ["Timeout"],
    );
  });

  it("bounds a streaming tool called with ExecuteTool by both timeouts too", async () => {
    await assert.rejects(
      client.executeTool("ticks", { n: 2, delay_ms: 30_000 }),
      isBridgeError(ErrorType.Timeout, (e) => assert.equal(e.details.timeout, "idle")),
    );
    await assert.rejects(
      client.executeTool("count", { n: 1_000_000, delay_ms: 5 }, { timeoutMs: 500 }),
      isBridgeError(ErrorType.Timeout, (e) =>
        assert.deepEqual(e.details, { timeout: "total", timeout_ms: "500" }),
      ),
    );
  });
});

describe("stream timeout defaults of the host's configuration", () => {
  it("apply to tools that declare none", async () => {
    const host = new ToolBridgeHost({
      host: "127.0.0.1",
      port: 0,
      streamIdleTimeoutMs: 200,
      streamTotalTimeoutMs: 1_500,
      logger: pino({ level: "silent" }),
    });
    host.registerTool(
      defineTool({
        name: "tick",
        description: "Streams n values, delay_ms apart.",
        parameters: z.object({ n: z.int(), delay_ms: z.int() }),
        streaming: true,
        handler: async function* ({ n, delay_ms }, ctx) {
          for (let i = 0; i < n; i++) {
            await sleep(delay_ms, undefined, { signal: ctx.signal });
            yield i;
          }
        },
      }),
    );
    const { target } = await host.start();
    const client = new ToolBridgeClient(target);
    try {
      await client.initializeSession();
      const spec = (await client.listTools())[0];
      assert.deepEqual([spec?.timeoutMs, spec?.idleTimeoutMs], [0, 0], "the spec says: host defaults");
      const stalled = client.streamTool("tick", { n: 1, delay_ms: 30_000 });
      await assert.rejects(
        stalled.next(),
        isBridgeError(ErrorType.Timeout, (e) =>
          assert.deepEqual(e.details, { timeout: "idle", timeout_ms: "200" }),
        ),
      );
      let chunks = 0;
      await assert.rejects(
        (async () => {
          for await (const _ of client.streamTool("tick", { n: 1_000_000, delay_ms: 5 })) chunks++;
        })(),
        isBridgeError(ErrorType.Timeout, (e) =>
          assert.deepEqual(e.details, { timeout: "total", timeout_ms: "1500" }),
        ),
      );
      assert.ok(chunks > 1);
    } finally {
      client.close();
      await host.stop({ graceMs: 0 });
    }
  });
});
