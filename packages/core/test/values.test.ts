// The value codec against testdata/values/vectors.json (the vectors the Python suite checks too).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BridgeError,
  decodeValue,
  decodeValueBytes,
  encodeValue,
  encodeValueBytes,
  float64,
  MAX_VALUE_DEPTH,
  type NativeValue,
  orderedKeys,
  type pbValues,
  Tensor,
  Timestamp,
} from "@toolbridge/core";
import { assertSame, native, vectors } from "../../../testdata/values/vectors.js";

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

  it("keeps the order a map arrived in on the decoded object, for orderedKeys() and re-encoding", () => {
    const keysOf = (value: pbValues.Value) =>
      value.kind?.$case === "mapValue" ? value.kind.value.entries.map((e) => e.key) : [];
    const sent = new Map<string, NativeValue>([
      ["b", 1],
      ["10", 2],
      [
        "a",
        new Map([
          ["9", 1],
          ["x", 2],
          ["1", 3],
        ]),
      ],
      [
        "2",
        [
          new Map([
            ["7", 0],
            ["c", 0],
          ]),
        ],
      ],
    ]);
    const decoded = decodeValue(encodeValue(sent)) as Record<string, NativeValue>;
    assert.deepEqual(Object.keys(decoded), ["2", "10", "b", "a"]);
    assert.deepEqual(orderedKeys(decoded), ["b", "10", "a", "2"]);
    assert.deepEqual(orderedKeys(decoded.a as object), ["9", "x", "1"]);
    assert.equal(JSON.stringify(decoded), '{"2":[{"7":0,"c":0}],"10":2,"b":1,"a":{"1":3,"9":1,"x":2}}');
    const again = encodeValue(decoded);
    assert.deepEqual(keysOf(again), ["b", "10", "a", "2"]);
    assert.deepEqual(encodeValueBytes(decoded), encodeValueBytes(sent));

    // Keys added later follow in JavaScript's order; removed ones are gone; a copy has no order.
    decoded["1"] = 5;
    delete decoded.b;
    assert.deepEqual(orderedKeys(decoded), ["10", "a", "2", "1"]);
    assert.deepEqual(orderedKeys({ ...decoded }), ["1", "2", "10", "a"]);
    assert.deepEqual(keysOf(encodeValue({ ...decoded })), ["1", "2", "10", "a"]);
    // Without integer-like keys JavaScript's order is the arrival order, and nothing is recorded.
    const plain = decodeValue(
      encodeValue(
        new Map([
          ["z", 1],
          ["y", 2],
        ]),
      ),
    ) as object;
    assert.deepEqual(Object.getOwnPropertySymbols(plain), []);
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
