// Session variables over the wire: the TS client (and the raw stub, for what the client
// never sends) against the real host CLI on loopback.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  ErrorType,
  float64,
  type NativeValue,
  Tensor,
  Timestamp,
  ToolBridgeClient,
  type VariableUpdate,
} from "@toolbridge/client";
import { pb } from "@toolbridge/core";
import { fails } from "../../server/test/support/assertions.js";
import { type HostProcess, startHost } from "../../server/test/support/host-process.js";
import { incrementRace } from "../../server/test/support/races.js";
import { connect, take } from "./support/variables.js";

function unary<Req, Res>(
  invoke: (req: Req, cb: (error: grpc.ServiceError | null, res: Res) => void) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(request, (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}

/** Tensors and bytes in a form deepStrictEqual compares by content. */
function comparable(value: NativeValue | undefined): unknown {
  if (value instanceof Tensor) return { dtype: value.dtype, shape: [...value.shape], data: [...value.data] };
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (Array.isArray(value)) return value.map(comparable);
  if (value instanceof Map) return [...value].map(([k, v]) => [k, comparable(v)]);
  if (
    value !== null &&
    typeof value === "object" &&
    !(value instanceof Date) &&
    !(value instanceof Timestamp)
  ) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]));
  }
  return value;
}

/** Every value kind, what it decodes back to, and the type an undeclared variable records for it. */
const VALUES: [name: string, value: unknown, decoded: NativeValue, type: string][] = [
  ["null", null, null, "null"],
  ["true", true, true, "boolean"],
  ["false", false, false, "boolean"],
  ["zero", 0, 0, "integer"],
  ["negative", -42, -42, "integer"],
  ["int64_max", 2n ** 63n - 1n, 2n ** 63n - 1n, "integer"],
  ["int64_min", -(2n ** 63n), -(2n ** 63n), "integer"],
  ["big", 2n ** 100n, 2n ** 100n, "integer"],
  ["negative_big", -(3n ** 90n), -(3n ** 90n), "integer"],
  ["float", 1.5, 1.5, "float"],
  ["integral_float", float64(2), 2, "float"],
  ["nan", Number.NaN, Number.NaN, "float"],
  ["inf", Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, "float"],
  ["neg_inf", Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, "float"],
  ["neg_zero", -0, -0, "float"],
  ["string", "héllo 😀 \u0000 end", "héllo 😀 \u0000 end", "string"],
  ["empty_string", "", "", "string"],
  ["bytes", new Uint8Array([0, 255, 1, 128]), new Uint8Array([0, 255, 1, 128]), "bytes"],
  ["empty_bytes", new Uint8Array(0), new Uint8Array(0), "bytes"],
  ["list", [1, "a", [null, [true, 2.5]]], [1, "a", [null, [true, 2.5]]], "list"],
  [
    "map",
    { z: 1, a: { nested: [1.5, { deep: "x" }] } },
    { z: 1, a: { nested: [1.5, { deep: "x" }] } },
    "map",
  ],
  ["date", new Date(1_700_000_000_123), new Date(1_700_000_000_123), "timestamp"],
  [
    "timestamp_ns",
    new Timestamp(1_700_000_000n, 123_456_789),
    new Timestamp(1_700_000_000n, 123_456_789),
    "timestamp",
  ],
];

const TENSORS: Tensor[] = [
  new Tensor("bool", [2, 2], new Uint8Array([0, 1, 1, 0])),
  Tensor.fromTypedArray(new Int8Array([-128, 0, 127]), [3]),
  Tensor.fromTypedArray(new Int16Array([-32768, 1, 32767, 4, 5, 6]), [2, 3]),
  Tensor.fromTypedArray(new Int32Array([-(2 ** 31), 2 ** 31 - 1]), [1, 2]),
  Tensor.fromTypedArray(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]), [2]),
  new Tensor("uint8", [4], new Uint8Array([0, 1, 254, 255])),
  Tensor.fromTypedArray(new Uint16Array([0, 65535]), [2, 1]),
  Tensor.fromTypedArray(new Uint32Array([0, 2 ** 32 - 1]), [2]),
  Tensor.fromTypedArray(new BigUint64Array([0n, 2n ** 64n - 1n]), [2]),
  new Tensor("float16", [2], new Uint8Array([0x00, 0x3c, 0x00, 0x7c])),
  Tensor.fromTypedArray(new Float32Array([1.5, Number.NaN, -0, 3.25, 1e-40, 7]), [3, 2]),
  Tensor.fromTypedArray(new Float64Array([Math.PI]), []),
  Tensor.fromTypedArray(new Float32Array(0), [0, 3]),
];
for (const t of TENSORS) VALUES.push([`tensor_${t.dtype}_${t.shape.join("x") || "scalar"}`, t, t, "tensor"]);

describe("variables against the real host", () => {
  let host: HostProcess;
  let a: ToolBridgeClient;
  let b: ToolBridgeClient;
  let stub: pb.ToolBridgeClient;

  before(async () => {
    host = await startHost({ "max-variable-bytes": 65536, "watch-buffer-bytes": 262144 });
    a = await connect(host);
    b = await connect(host, a.sessionId);
    stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
  });
  after(async () => {
    a.close();
    b.close();
    stub.close();
    assert.equal(await host.stop(), 0, host.stderr());
  });

  it("round-trips every value kind exactly (tensors: dtype, shape, bytes) through get, list and watch", async () => {
    const watch = b.watchVariables([], { includeInitialValues: false });
    await watch.ready();
    for (const [name, value, decoded, type] of VALUES) {
      const info = await a.setVariable(`kind.${name}`, value);
      assert.deepEqual([info.type, info.declared, info.version], [type, false, 1], name);
      const read = await b.getVariable(`kind.${name}`);
      assert.deepStrictEqual(comparable(read.value), comparable(decoded), name);
      assert.equal(read.type, type, name);
    }
    const listed = await b.listVariables({ prefix: "kind." });
    const byName = new Map(listed.map((v) => [v.name, v.value]));
    assert.equal(byName.size, VALUES.length);
    const updates = await take(watch, VALUES.length);
    for (const [i, [name, , decoded]] of VALUES.entries()) {
      assert.deepStrictEqual(comparable(byName.get(`kind.${name}`)), comparable(decoded), name);
      const update = updates[i];
      assert.ok(update?.kind === "set" && update.name === `kind.${name}`, `update ${i} is for ${name}`);
      assert.deepStrictEqual(comparable(update.variable.value), comparable(decoded), name);
    }
  });

  it("keeps the insertion order of map keys for a client that decodes maps as Map", async () => {
    const ordered = await connect(host, a.sessionId, { decode: { maps: "map" } });
    try {
      await a.setVariable(
        "ordered",
        new Map<string, number>([
          ["2", 1],
          ["1", 2],
          ["b", 3],
          ["a", 4],
        ]),
      );
      const value = (await ordered.getVariable("ordered")).value;
      assert.ok(value instanceof Map);
      assert.deepEqual([...value.keys()], ["2", "1", "b", "a"]);
    } finally {
      ordered.close();
    }
  });

  it("refuses writes that break a declaration with ConstraintViolation and keeps the old value", async () => {
    const declared = await a.declareVariable("temperature", "float", 0.7, {
      constraints: { min: 0, max: 2 },
      tags: { owner: "planner" },
    });
    assert.deepEqual(
      [declared.type, declared.declared, declared.constraints],
      ["float", true, { min: 0, max: 2 }],
    );
    await assert.rejects(
      b.setVariable("temperature", 2.5),
      fails(
        ErrorType.ConstraintViolation,
        (e) => e.details.constraint === "max" && /at most|maximum 2/.test(e.message),
      ),
    );
    await assert.rejects(b.setVariable("temperature", "hot"), fails(ErrorType.ConstraintViolation));
    await a.declareVariable("mode", "choice", "fast", { constraints: { choices: ["fast", "careful"] } });
    await assert.rejects(b.setVariable("mode", "slow"), fails(ErrorType.ConstraintViolation));
    await a.declareVariable("v", "embedding", [0.1, 0.2], { constraints: { dimensions: 2 } });
    await assert.rejects(b.setVariable("v", [1, 2, 3]), fails(ErrorType.ConstraintViolation));
    const kept = await b.getVariable("temperature");
    assert.deepEqual([kept.value, kept.version, kept.tags], [0.7, 1, { owner: "planner" }]);
    assert.equal((await b.setVariable("temperature", 1)).version, 2);
  });

  it("two clients racing with expectedVersion: exactly one wins each round, no update is lost", async () => {
    await a.setVariable("race", "start");
    for (let round = 0; round < 20; round++) {
      const [va, vb] = await Promise.all([a.getVariable("race"), b.getVariable("race")]);
      assert.equal(va.version, vb.version);
      const results = await Promise.allSettled([
        a.setVariable("race", `a${round}`, { expectedVersion: va.version }),
        b.setVariable("race", `b${round}`, { expectedVersion: vb.version }),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r) => r.status === "rejected");
      assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.status))}`);
      assert.ok(lost[0]?.status === "rejected" && fails(ErrorType.VersionConflict)(lost[0].reason));
      const winner = results[0]?.status === "fulfilled" ? `a${round}` : `b${round}`;
      assert.equal((await a.getVariable("race")).value, winner);
    }
    assert.equal((await a.getVariable("race")).version, 21);

    // Read-modify-write with retry on conflict: 2 x 40 increments, none lost. Both writers
    // read before either writes, so until one is done every round is a race one of them loses.
    await a.setVariable("counter", 0);
    const conflicts = await incrementRace("counter", [
      [a, 40],
      [b, 40],
    ]);
    const counter = await a.getVariable("counter");
    assert.deepEqual([counter.value, counter.version], [80, 81]);
    assert.ok(conflicts >= 40, `${conflicts} conflicts`);
  });

  it("watch delivers every committed update, in commit order, to two watchers", async () => {
    const watchers = [a.watchVariables(["w.x", "w.y"]), b.watchVariables(["w.x", "w.y"])];
    await Promise.all(watchers.map((w) => w.ready()));
    const writes = async (client: ToolBridgeClient, name: string) => {
      for (let i = 0; i < 30; i++) await client.setVariable(name, i);
    };
    await Promise.all([writes(a, "w.x"), writes(b, "w.y"), a.setVariable("w.other", 1)]);
    await a.deleteVariable("w.x");
    const [first, second] = await Promise.all(watchers.map((w) => take(w, 61)));
    const summary = (u: VariableUpdate) =>
      u.kind === "set"
        ? `${u.name}@${u.version}=${String(u.variable.value)}`
        : `${u.kind}:${"name" in u ? u.name : ""}`;
    assert.deepEqual(first?.map(summary), second?.map(summary));
    for (const name of ["w.x", "w.y"]) {
      const sets = first?.filter((u) => u.kind === "set" && u.name === name) ?? [];
      assert.deepEqual(
        sets.map((u) => (u.kind === "set" ? [u.version, u.variable.value] : [])),
        Array.from({ length: 30 }, (_, i) => [i + 1, i]),
      );
    }
    const last = first?.at(-1);
    assert.deepEqual(last?.kind === "deleted" ? { ...last, sequence: 0 } : last, {
      kind: "deleted",
      sessionId: a.sessionId,
      name: "w.x",
      version: 31,
      sequence: 0,
    });
    // Sequences number the session's changes: they grow along the watch (w.other's write is filtered out).
    const sequences = first?.map((u) => ("sequence" in u ? u.sequence : 0)) ?? [];
    assert.ok(
      sequences.every((s, i) => i === 0 || s > (sequences[i - 1] ?? 0)),
      sequences.join(","),
    );
  });

  it("watch with initial values sends the current values first", async () => {
    await a.setVariable("init.a", "A");
    await a.setVariable("init.b", "B");
    const watch = b.watchVariables(["init.a", "init.b", "init.missing"], { includeInitialValues: true });
    await watch.ready();
    await a.setVariable("init.a", "A2");
    const updates = await take(watch, 3);
    assert.deepEqual(
      updates.map((u) =>
        u.kind === "initial" || u.kind === "set" ? [u.kind, u.name, u.variable.value] : [u.kind],
      ),
      [
        ["initial", "init.a", "A"],
        ["initial", "init.b", "B"],
        ["set", "init.a", "A2"],
      ],
    );
  });

  it("a watcher that reads late gets every update in order, or an explicit ResourceExhausted, never a gap", async () => {
    // How far a reader may lag before the host ends its watch depends on how much the
    // transport buffers for it: grpc-js keeps reading a stream its user is not reading,
    // so against this client the host's watch buffer rarely fills (the in-process tests
    // and the Python tests cover the overflow itself).
    const late = b.watchVariables(["bulk"]);
    await late.ready();
    const chunk = "x".repeat(32 * 1024);
    for (let i = 0; i < 100; i++) await a.setVariable("bulk", `${i}:${chunk}`);
    const seen: number[] = [];
    let failure: unknown;
    try {
      for await (const update of late) {
        if (update.kind === "set") seen.push(Number(String(update.variable.value).split(":")[0]));
        if (seen.length === 100) break;
      }
    } catch (error) {
      failure = error;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: seen.length }, (_, i) => i),
    );
    if (seen.length < 100) fails(ErrorType.ResourceExhausted)(failure);
    assert.ok(await a.healthCheck());
  });

  it("bad names, oversized values and bad watch requests get clear errors, and the host keeps serving", async () => {
    for (const name of ["has space", "", "9lives", "x".repeat(200)]) {
      await assert.rejects(
        a.setVariable(name, 1),
        fails(ErrorType.ValidationError, (e) => e.details.field === "variable_name"),
      );
      await assert.rejects(a.getVariable(name), fails(ErrorType.ValidationError));
    }
    await assert.rejects(
      a.setVariable("huge", "x".repeat(70_000)),
      fails(ErrorType.InvalidValue, (e) => e.details.reason === "too_large" && e.details.limit === "65536"),
    );
    await assert.rejects(a.getVariable("never_set"), fails(ErrorType.VariableNotFound));
    await assert.rejects(a.deleteVariable("never_set"), fails(ErrorType.VariableNotFound));
    const bad = a.watchVariables(["ok", "not ok"]);
    await assert.rejects(bad.ready(), fails(ErrorType.ValidationError));
    await assert.rejects(take(bad, 1), fails(ErrorType.ValidationError));
    // A client whose session another client cleaned up still names it; the host no longer knows it.
    const [owner, stale] = [await connect(host), new ToolBridgeClient(host.target)];
    try {
      await stale.initializeSession(owner.sessionId);
      await owner.cleanup();
      await assert.rejects(stale.setVariable("x", 1), fails(ErrorType.SessionNotFound));
      await assert.rejects(stale.listVariables(), fails(ErrorType.SessionNotFound));
      const watch = stale.watchVariables();
      await assert.rejects(watch.ready(), fails(ErrorType.SessionNotFound));
      await assert.rejects(take(watch, 1), fails(ErrorType.SessionNotFound));
    } finally {
      owner.close();
      stale.close();
    }
    assert.equal((await a.setVariable("after_errors", true)).version, 1);
  });

  it("holds the protocol's own rules for what the clients never send (raw stub)", async () => {
    const sessionId = a.sessionId ?? "";
    const set = (req: Partial<pb.SetVariableRequest>) =>
      unary<pb.SetVariableRequest, pb.SetVariableResponse>(
        (r, cb) => stub.setSessionVariable(r, cb),
        pb.SetVariableRequest.fromPartial({ sessionId, ...req }),
      );
    const intValue = (n: bigint) => ({ kind: { $case: "intValue" as const, value: n } });

    // create_if_missing defaults to false on the wire.
    let response = await set({ variableName: "raw.a", value: intValue(1n) });
    assert.equal(response.error?.type, ErrorType.VariableNotFound);
    response = await set({ variableName: "raw.a", value: intValue(1n), expectedVersion: 0n });
    assert.deepEqual([response.success, response.version], [true, 1n]);
    response = await set({ variableName: "raw.b", value: undefined, createIfMissing: true });
    assert.equal(response.error?.type, ErrorType.InvalidValue);
    response = await set({
      variableName: "raw.c",
      value: intValue(1n),
      createIfMissing: true,
      metadata: pb.VariableMetadata.fromPartial({ constraints: { min: 0 } }),
    });
    assert.equal(response.error?.type, ErrorType.ValidationError);
    response = await set({
      variableName: "raw.d",
      value: { kind: { $case: "tensorValue", value: { dtype: 11, shape: [3], data: Buffer.alloc(4) } } },
      createIfMissing: true,
    });
    assert.equal(response.error?.type, ErrorType.InvalidValue);
    response = await set({
      variableName: "raw.e",
      value: intValue(1n),
      createIfMissing: true,
      metadata: pb.VariableMetadata.fromPartial({ createdBy: "Not Valid!" }),
    });
    assert.equal(response.error?.details.field, "metadata.created_by");

    // A Python worker's write is recorded as such; an integer declared float is stored as a float.
    response = await set({
      variableName: "raw.f",
      value: intValue(1n),
      createIfMissing: true,
      metadata: pb.VariableMetadata.fromPartial({ type: "float", createdBy: "python", tags: { a: "1" } }),
    });
    assert.ok(response.success, response.error?.message);
    await a.setVariable("raw.f", 1.5);
    const got = await unary<pb.GetVariableRequest, pb.VariableResponse>(
      (r, cb) => stub.getSessionVariable(r, cb),
      {
        sessionId,
        variableName: "raw.f",
        includeMetadata: false,
      },
    );
    assert.equal(got.metadata, undefined);
    const read = await a.getVariable("raw.f");
    assert.deepEqual([read.createdBy, read.updatedBy, read.tags], ["python", "typescript", { a: "1" }]);
    response = await set({
      variableName: "raw.g",
      value: intValue(2n),
      createIfMissing: true,
      metadata: pb.VariableMetadata.fromPartial({ type: "float" }),
    });
    const raw = await unary<pb.GetVariableRequest, pb.VariableResponse>(
      (r, cb) => stub.getSessionVariable(r, cb),
      {
        sessionId,
        variableName: "raw.g",
        includeMetadata: true,
      },
    );
    assert.deepEqual(raw.value?.kind, { $case: "floatValue", value: 2 });
    assert.equal(raw.metadata?.updatedBy, "unknown");
  });
});
