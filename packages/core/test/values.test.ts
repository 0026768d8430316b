// The value codec against testdata/values/vectors.json (the vectors the Python suite checks too).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  BridgeError,
  type DTypeName,
  decodeValue,
  decodeValueBytes,
  encodeValue,
  encodeValueBytes,
  float64,
  MAX_VALUE_DEPTH,
  type NativeValue,
  Tensor,
  Timestamp,
} from "@toolbridge/core";

type Tagged = Record<string, unknown>;
interface ValidVector {
  name: string;
  value: Tagged;
  hex: string;
}
interface InvalidVector {
  name: string;
  hex: string;
  reason: string;
}
const vectors = JSON.parse(
  readFileSync(new URL("../../../testdata/values/vectors.json", import.meta.url), "utf8"),
) as { valid: ValidVector[]; invalid: InvalidVector[] };

/** The JS value a tagged vector stands for; `forEncode` wraps floats so integral ones stay floats. */
function native(tagged: Tagged, forEncode: boolean): unknown {
  const [kind, body] = Object.entries(tagged)[0] as [string, never];
  switch (kind) {
    case "null":
      return null;
    case "bool":
    case "string":
      return body;
    case "int": {
      const n = BigInt(body as string);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    case "float":
      return forEncode ? float64(Number(body)) : Number(body);
    case "bytes":
      return Buffer.from(body as string, "hex");
    case "list":
      return (body as Tagged[]).map((item) => native(item, forEncode));
    case "map":
      return new Map((body as [string, Tagged][]).map(([k, v]) => [k, native(v, forEncode)]));
    case "tensor": {
      const t = body as { dtype: DTypeName; shape: number[]; data: string };
      return new Tensor(t.dtype, t.shape, Buffer.from(t.data, "hex"));
    }
    case "timestamp": {
      const t = body as { seconds: string; nanos: number };
      const ts = new Timestamp(BigInt(t.seconds), t.nanos);
      return ts.nanos % 1_000_000 === 0 ? ts.toDate() : ts;
    }
    default:
      throw new Error(`unknown tagged kind ${kind}`);
  }
}

/** Equality that checks exact kinds: Object.is for numbers (NaN, -0), Map order, tensor dtype. */
function assertSame(actual: unknown, expected: unknown, path = "$"): void {
  if (expected instanceof Uint8Array) {
    assert.ok(actual instanceof Uint8Array, `${path}: expected bytes`);
    assert.equal(Buffer.from(actual).toString("hex"), Buffer.from(expected).toString("hex"), path);
  } else if (expected instanceof Map) {
    assert.ok(actual instanceof Map, `${path}: expected a Map`);
    assert.deepEqual([...actual.keys()], [...expected.keys()], `${path}: key order`);
    for (const [key, item] of expected) assertSame(actual.get(key), item, `${path}.${key}`);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array`);
    assert.equal(actual.length, expected.length, path);
    for (const [i, item] of expected.entries()) assertSame(actual[i], item, `${path}[${i}]`);
  } else if (expected instanceof Tensor) {
    assert.ok(actual instanceof Tensor, `${path}: expected a Tensor`);
    assert.equal(actual.dtype, expected.dtype, path);
    assert.deepEqual(actual.shape, expected.shape, path);
    assertSame(actual.data, expected.data, `${path}.data`);
  } else if (expected instanceof Date) {
    assert.ok(actual instanceof Date, `${path}: expected a Date`);
    assert.equal(actual.getTime(), expected.getTime(), path);
  } else if (expected instanceof Timestamp) {
    assert.ok(actual instanceof Timestamp, `${path}: expected a Timestamp`);
    assert.equal(actual.seconds, expected.seconds, path);
    assert.equal(actual.nanos, expected.nanos, path);
  } else {
    assert.equal(typeof actual, typeof expected, `${path}: kind`);
    assert.ok(Object.is(actual, expected), `${path}: ${String(actual)} !== ${String(expected)}`);
  }
}

describe("value vectors", () => {
  it("cover at least 40 valid cases", () => {
    assert.ok(vectors.valid.length >= 40);
    assert.ok(vectors.invalid.length >= 10);
  });

  for (const vector of vectors.valid) {
    it(`encodes to the exact bytes: ${vector.name}`, () => {
      const bytes = encodeValueBytes(native(vector.value, true));
      assert.equal(Buffer.from(bytes).toString("hex"), vector.hex);
    });
    it(`decodes to the value: ${vector.name}`, () => {
      const decoded = decodeValueBytes(Buffer.from(vector.hex, "hex"), { maps: "map" });
      assertSame(decoded, native(vector.value, false));
    });
  }

  for (const vector of vectors.invalid) {
    it(`rejects: ${vector.name}`, () => {
      assert.throws(
        () => decodeValueBytes(Buffer.from(vector.hex, "hex")),
        (error: unknown) =>
          error instanceof BridgeError &&
          error.type === "InvalidValue" &&
          error.details.reason === vector.reason,
      );
    });
  }
});

describe("JavaScript mapping beyond the vectors", () => {
  it("decodes maps as plain objects by default, safe for __proto__ keys", () => {
    const decoded = decodeValueBytes(
      encodeValueBytes(
        new Map([
          ["__proto__", 1],
          ["a", 2],
        ]),
      ),
    ) as Record<string, NativeValue>;
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.deepEqual(Object.keys(decoded), ["__proto__", "a"]);
    assert.equal(decoded.a, 2);
  });

  it("maps numbers by integrality and keeps floats when asked", () => {
    assert.equal(encodeValue(3).kind?.$case, "intValue");
    assert.equal(encodeValue(3.5).kind?.$case, "floatValue");
    assert.equal(encodeValue(-0).kind?.$case, "floatValue");
    assert.equal(encodeValue(float64(3)).kind?.$case, "floatValue");
    assert.equal(encodeValue(2 ** 60).kind?.$case, "intValue");
    assert.equal(encodeValue(2n ** 64n).kind?.$case, "bigIntValue");
  });

  it("encodes typed arrays as 1-D tensors and decodes them back to a typed view", () => {
    const decoded = decodeValue(encodeValue(new Float32Array([1, 2.5, -3]))) as Tensor;
    assert.equal(decoded.dtype, "float32");
    assert.deepEqual(decoded.shape, [3]);
    assert.deepEqual([...(decoded.toTypedArray() as Float32Array)], [1, 2.5, -3]);
    const i64 = decodeValue(encodeValue(new BigInt64Array([-(2n ** 63n)]))) as Tensor;
    assert.deepEqual([...(i64.toTypedArray() as BigInt64Array)], [-(2n ** 63n)]);
  });

  it("follows JSON for undefined, toJSON and Sets", () => {
    const decoded = decodeValue(
      encodeValue({ a: undefined, b: [undefined], c: new URL("http://x/"), d: new Set([1]) }),
    );
    assert.deepEqual(decoded, { b: [null], c: "http://x/", d: [1] });
  });

  it("names the place of an unencodable value", () => {
    assert.throws(
      () => encodeValue({ a: [1, { b: () => 1 }] }),
      (error: unknown) =>
        error instanceof BridgeError &&
        error.details.reason === "unsupported_type" &&
        error.details.path === "$.a[1].b" &&
        error.message.includes("(at $.a[1].b)"),
    );
    assert.throws(() => encodeValue(["\ud800"]), /lone surrogate/);
    assert.throws(() => encodeValue(new Map([[1 as unknown as string, 1]])), /map keys must be strings/);
    assert.throws(() => encodeValue(Symbol("x")), /symbol/);
  });

  it("refuses values nested too deep or cyclic", () => {
    let deep: unknown[] = [];
    for (let i = 0; i < MAX_VALUE_DEPTH; i++) deep = [deep];
    assert.throws(() => encodeValue(deep), /deeper than 32/);
    const cyclic: Record<string, unknown> = {};
    let cursor = cyclic;
    for (let i = 0; i < 10; i++) {
      const next: Record<string, unknown> = {};
      cursor.next = next;
      cursor = next;
    }
    cursor.next = cyclic;
    assert.throws(() => encodeValue(cyclic), /circular|deeper/);
  });

  it("refuses invalid tensors and timestamps at construction", () => {
    assert.throws(() => new Tensor("float32", [2], new Uint8Array(3)), /needs 8 bytes/);
    assert.throws(() => new Tensor("bool", [1], new Uint8Array([2])), /only 0 and 1/);
    assert.throws(() => new Timestamp(0n, 1_000_000_000), /nanos/);
    assert.throws(() => encodeValue(new Date(Number.NaN)), /invalid Date/);
  });
});
