// Schema-guided encoding on its own: which numbers a JSON Schema turns into floats, and
// that everything it does not describe keeps the codec's own inference.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeValue, encodingGuide, listGuide, type pbValues } from "@toolbridge/core";

/** The kinds of a Value as a plain tree, e.g. {a: "float", b: ["int", "float"]}. */
function kinds(value: pbValues.Value | undefined): unknown {
  const kind = value?.kind;
  switch (kind?.$case) {
    case "intValue":
      return "int";
    case "floatValue":
      return "float";
    case "bigIntValue":
      return "big_int";
    case "listValue":
      return kind.value.values.map(kinds);
    case "mapValue":
      return Object.fromEntries(kind.value.entries.map((e) => [e.key, kinds(e.value)]));
    default:
      return kind?.$case;
  }
}

function encodedKinds(value: unknown, schema: unknown): unknown {
  return kinds(encodeValue(value, encodingGuide(schema)));
}

describe("encodingGuide", () => {
  it("sends integral numbers as floats where the schema says number, ints where it says integer", () => {
    const schema = {
      type: "object",
      properties: { ratio: { type: "number" }, huge: { type: "number" }, count: { type: "integer" } },
    };
    assert.deepEqual(encodedKinds({ ratio: 1, huge: 1e300, count: 3, other: 4 }, schema), {
      ratio: "float",
      huge: "float",
      count: "int",
      other: "int",
    });
    const encoded = encodeValue({ huge: 1e300 }, encodingGuide(schema));
    assert.deepEqual(encoded.kind?.$case === "mapValue" && encoded.kind.value.entries[0]?.value?.kind, {
      $case: "floatValue",
      value: 1e300,
    });
    // Without a guide the codec infers: an integral number is an int, 1e300 a big int.
    assert.deepEqual(kinds(encodeValue({ ratio: 1, huge: 1e300 })), { ratio: "int", huge: "big_int" });
  });

  it("follows arrays, tuples, records, catchalls and Maps", () => {
    assert.deepEqual(encodedKinds([1, 2], { type: "array", items: { type: "number" } }), ["float", "float"]);
    const tuple = { type: "array", prefixItems: [{ type: "integer" }, { type: "number" }], items: false };
    assert.deepEqual(encodedKinds([4, 4], tuple), ["int", "float"]);
    const withRest = { type: "array", prefixItems: [{ type: "integer" }], items: { type: "number" } };
    assert.deepEqual(encodedKinds([4, 4, 4], withRest), ["int", "float", "float"]);
    const record = { type: "object", additionalProperties: { type: "number" } };
    assert.deepEqual(encodedKinds({ a: 1, b: 2 }, record), { a: "float", b: "float" });
    assert.deepEqual(encodedKinds(new Map([["a", 1]]), record), { a: "float" });
    const catchall = {
      type: "object",
      properties: { id: { type: "integer" } },
      additionalProperties: { type: "number" },
    };
    assert.deepEqual(encodedKinds({ id: 1, x: 2 }, catchall), { id: "int", x: "float" });
    assert.deepEqual(encodedKinds(new Set([1]), { type: "array", items: { type: "number" } }), ["float"]);
  });

  it("picks a union's alternative by the value: nullable, discriminated, first match", () => {
    assert.equal(encodedKinds(7, { type: ["number", "null"] }), "float");
    assert.equal(encodedKinds(null, { type: ["number", "null"] }), "nullValue");
    assert.equal(encodedKinds(7, { anyOf: [{ type: "number" }, { type: "null" }] }), "float");
    const shapes = {
      oneOf: [
        { type: "object", properties: { kind: { const: "circle" }, radius: { type: "number" } } },
        { type: "object", properties: { kind: { const: "grid" }, cells: { type: "integer" } } },
      ],
    };
    assert.deepEqual(encodedKinds({ kind: "circle", radius: 2 }, shapes), {
      kind: "stringValue",
      radius: "float",
    });
    assert.deepEqual(encodedKinds({ kind: "grid", cells: 9 }, shapes), { kind: "stringValue", cells: "int" });
    // As zod's unions do, the first alternative accepting the value wins.
    assert.equal(encodedKinds(3, { anyOf: [{ type: "integer" }, { type: "number" }] }), "int");
    assert.equal(encodedKinds(3, { anyOf: [{ type: "string" }, { type: "number" }] }), "float");
    assert.equal(encodedKinds("x", { anyOf: [{ type: "string" }, { type: "number" }] }), "stringValue");
  });

  it("follows $ref, recursion and allOf", () => {
    const tree = {
      $ref: "#/$defs/node",
      $defs: {
        node: {
          type: "object",
          properties: {
            value: { type: "number" },
            children: { type: "array", items: { $ref: "#/$defs/node" } },
          },
        },
      },
    };
    const value = { value: 1, children: [{ value: 2, children: [{ value: 3, children: [] }] }] };
    assert.deepEqual(encodedKinds(value, tree), {
      value: "float",
      children: [{ value: "float", children: [{ value: "float", children: [] }] }],
    });
    // A float reached only through a cycle back to the root still counts.
    const cyclic = {
      type: "object",
      properties: { child: { $ref: "#/$defs/b" }, x: { type: "number" } },
      $defs: { b: { type: "object", properties: { parent: { $ref: "#" } } } },
    };
    assert.deepEqual(encodedKinds({ x: 1, child: { parent: { x: 2 } } }, cyclic), {
      x: "float",
      child: { parent: { x: "float" } },
    });
    const both = {
      allOf: [{ properties: { a: { type: "number" } } }, { properties: { b: { type: "integer" } } }],
    };
    assert.deepEqual(encodedKinds({ a: 1, b: 1 }, both), { a: "float", b: "int" });
  });

  it("leaves literals, unknown places and non-JSON values to inference", () => {
    assert.equal(encodedKinds(1, { type: "number", const: 1 }), "int");
    assert.equal(encodedKinds(2, { type: "number", enum: [1, 2] }), "int");
    assert.equal(encodedKinds(1.5, { type: "number", const: 1.5 }), "float");
    assert.deepEqual(encodedKinds({ a: 1 }, { type: "object", properties: { b: { type: "number" } } }), {
      a: "int",
    });
    assert.equal(encodedKinds(2n ** 70n, { type: "number" }), "big_int");
    assert.equal(encodingGuide({ type: "object", properties: { a: { type: "integer" } } }), undefined);
    assert.equal(encodingGuide(true), undefined);
    assert.equal(encodingGuide(undefined), undefined);
  });

  it("wraps a chunk guide for a list of chunks", () => {
    const chunk = encodingGuide({ type: "object", properties: { x: { type: "number" } } });
    assert.ok(chunk);
    assert.deepEqual(kinds(encodeValue([{ x: 1 }, { x: 2 }], listGuide(chunk))), [
      { x: "float" },
      { x: "float" },
    ]);
  });
});
