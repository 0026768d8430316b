/**
 * The shared value vectors (vectors.json, written by generate.py) as JavaScript values, for
 * the TypeScript tests that check the codec and the values crossing to Python workers.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type DTypeName, float64, Tensor, Timestamp } from "@toolbridge/core";

export type Tagged = Record<string, unknown>;
export interface ValidVector {
  name: string;
  value: Tagged;
  hex: string;
}
export interface InvalidVector {
  name: string;
  hex: string;
  reason: string;
}
export const vectors = JSON.parse(readFileSync(new URL("./vectors.json", import.meta.url), "utf8")) as {
  valid: ValidVector[];
  invalid: InvalidVector[];
};

/** The JS value a tagged vector stands for; `forEncode` wraps floats so integral ones stay floats. */
export function native(tagged: Tagged, forEncode: boolean): unknown {
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
export function assertSame(actual: unknown, expected: unknown, path = "$"): void {
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
