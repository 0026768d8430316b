// Declared variable types and constraints through the host's in-process API
// (host.variables(id)), with the memory store and with the Redis store (a real redis-server):
// every type accepts the values its constraints allow and refuses the rest with
// ConstraintViolation, bad declarations fail with ValidationError, and a declaration is
// repeated or changed only as documented (docs/variables.md).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorType, float64, Tensor, type VariableConstraints, type VariableType } from "@toolbridge/server";
import { fails } from "./support/assertions.js";
import { variableBackends } from "./support/variable-hosts.js";

const f32 = (values: number[], shape?: number[]) => Tensor.fromTypedArray(new Float32Array(values), shape);

interface TypeCase {
  type: VariableType;
  constraints?: VariableConstraints;
  initial: unknown;
  ok: unknown[];
  /** [value, the constraint the violation names] */
  bad: [unknown, string][];
}

const TYPE_CASES: TypeCase[] = [
  { type: "any", initial: 1, ok: ["x", null, [1, "a"], f32([1])], bad: [] },
  {
    type: "any",
    constraints: { choices: [1, "one", null] },
    initial: 1,
    ok: ["one", null],
    bad: [[2, "choices"]],
  },
  {
    type: "boolean",
    initial: true,
    ok: [false],
    bad: [
      [1, "type"],
      ["true", "type"],
      [null, "type"],
    ],
  },
  {
    type: "integer",
    constraints: { min: 0, max: 10 },
    initial: 0,
    ok: [10, 5n, 3],
    bad: [
      [-1, "min"],
      [11, "max"],
      [2.5, "type"],
      [float64(3), "type"],
      [2n ** 80n, "max"],
    ],
  },
  { type: "integer", constraints: { min: 0.5 }, initial: 1, ok: [2n ** 80n], bad: [[0, "min"]] },
  { type: "integer", constraints: { choices: [1, 2, 3] }, initial: 1, ok: [3], bad: [[4, "choices"]] },
  {
    type: "float",
    constraints: { min: 0, max: 2 },
    initial: 0.7,
    ok: [0, 2, 1.5, 1],
    bad: [
      [2.01, "max"],
      [-0.1, "min"],
      [Number.NaN, "min"],
      ["1", "type"],
      [2n ** 60n, "type"],
    ],
  },
  { type: "float", initial: Number.NaN, ok: [Number.POSITIVE_INFINITY, -0], bad: [[true, "type"]] },
  {
    type: "string",
    constraints: { minLength: 2, maxLength: 4, pattern: "^[a-z😀]+$" },
    initial: "ab",
    ok: ["abcd", "😀😀😀😀"],
    bad: [
      ["a", "min_length"],
      ["abcde", "max_length"],
      ["AB", "pattern"],
      [12, "type"],
    ],
  },
  {
    type: "string",
    constraints: { choices: ["fast", "slow"] },
    initial: "fast",
    ok: ["slow"],
    bad: [["medium", "choices"]],
  },
  {
    type: "bytes",
    constraints: { maxLength: 3 },
    initial: new Uint8Array([1]),
    ok: [new Uint8Array(3)],
    bad: [
      [new Uint8Array(4), "max_length"],
      ["abc", "type"],
    ],
  },
  { type: "timestamp", initial: new Date(0), ok: [new Date()], bad: [[0, "type"]] },
  {
    type: "choice",
    constraints: { choices: ["a", 1, true] },
    initial: "a",
    ok: [1, true],
    bad: [
      ["b", "choices"],
      [float64(1), "choices"],
    ],
  },
  {
    type: "list",
    constraints: { minLength: 1, maxLength: 3, itemType: "integer" },
    initial: [1],
    ok: [[1, 2, 3]],
    bad: [
      [[], "min_length"],
      [[1, 2, 3, 4], "max_length"],
      [[1, "2"], "type"],
      ["[1]", "type"],
    ],
  },
  {
    type: "map",
    constraints: { maxLength: 1 },
    initial: { a: 1 },
    ok: [{}, { b: [1] }],
    bad: [
      [{ a: 1, b: 2 }, "max_length"],
      [[1], "type"],
    ],
  },
  {
    type: "embedding",
    constraints: { dimensions: 3 },
    initial: [0.1, 0.2, 0.3],
    ok: [[1, 2, 3], f32([1, 2, 3])],
    bad: [
      [[1, 2], "dimensions"],
      [f32([1, 2, 3, 4], [2, 2]), "type"],
      [[1, Number.NaN, 2], "type"],
      [[1, "x", 2], "type"],
    ],
  },
  {
    type: "tensor",
    constraints: { shape: [2, 2], dtype: "float32" },
    initial: f32([1, 2, 3, 4], [2, 2]),
    ok: [f32([0, 0, 0, 0], [2, 2])],
    bad: [
      [f32([1, 2, 3, 4]), "shape"],
      [Tensor.fromTypedArray(new Float64Array(4), [2, 2]), "dtype"],
      [[1, 2, 3, 4], "type"],
    ],
  },
];

for (const backend of variableBackends()) {
  describe(`variables with the ${backend.name}`, () => {
    const { session } = backend;

    describe("declared types and constraints", () => {
      it("accept the values they allow and refuse the rest, keeping the old value", async () => {
        const { vars } = await session();
        for (const [index, c] of TYPE_CASES.entries()) {
          const name = `v${index}_${c.type}`;
          const declared = await vars.declare(
            name,
            c.type,
            c.initial,
            c.constraints ? { constraints: c.constraints } : {},
          );
          assert.equal(declared.type, c.type);
          assert.equal(declared.declared, true);
          let version = declared.version;
          for (const value of c.ok) {
            const written = await vars.set(name, value);
            assert.equal(written.version, ++version, `${name} <- ${String(value)}`);
          }
          const before = await vars.get(name);
          for (const [value, constraint] of c.bad) {
            await assert.rejects(
              vars.set(name, value),
              fails(
                ErrorType.ConstraintViolation,
                (e) => e.details.constraint === constraint && e.details.variable === name,
              ),
              `${name} <- ${String(value)} should violate ${constraint}`,
            );
          }
          assert.deepEqual(await vars.get(name), before, `${name} kept its value and version`);
        }
      });

      it("refuse bad declarations with ValidationError naming the field", async () => {
        const { vars } = await session();
        const cases: [VariableType | string, VariableConstraints, unknown, RegExp][] = [
          ["number", {}, 1, /unknown type 'number'/],
          ["string", { min: 1 }, "x", /'min' does not apply to type string/],
          ["boolean", { choices: [true] }, true, /takes no constraints/],
          ["float", { min: 2, max: 1 }, 1.5, /min 2 is greater than max 1/],
          ["float", { min: Number.NaN }, 1, /min is NaN/],
          ["string", { minLength: 3, maxLength: 2 }, "abc", /min_length 3 is greater/],
          ["string", { pattern: "(" }, "x", /not a valid RE2 regular expression/],
          ["choice", {}, 1, /non-empty list of choices/],
          ["integer", { choices: [1, "two"] }, 1, /choice 1/],
          ["list", { itemType: "choice" }, [], /item_type 'choice'/],
        ];
        for (const [type, constraints, value, message] of cases) {
          await assert.rejects(
            vars.declare("d", type as VariableType, value, { constraints }),
            fails(
              ErrorType.ValidationError,
              (e) => message.test(e.message) && e.details.field?.startsWith("metadata.") === true,
            ),
          );
        }
        assert.equal(await vars.has("d"), false);
      });

      it("a same declaration is a plain write, a different one fails, and an undeclared variable can be declared", async () => {
        const { vars } = await session();
        await vars.declare("n", "integer", 1, { constraints: { min: 0 } });
        assert.equal((await vars.declare("n", "integer", 2, { constraints: { min: 0 } })).version, 2);
        await assert.rejects(
          vars.declare("n", "integer", 3, { constraints: { min: 1 } }),
          fails(ErrorType.ValidationError, (e) => /already declared integer \(min 0\)/.test(e.message)),
        );
        await assert.rejects(vars.declare("n", "float", 3), fails(ErrorType.ValidationError));
        await vars.set("free", "text");
        const declared = await vars.declare("free", "string", "still text", {
          constraints: { maxLength: 20 },
        });
        assert.equal(declared.declared, true);
        assert.equal(declared.version, 2);
        await assert.rejects(vars.set("free", 5), fails(ErrorType.ConstraintViolation));
      });
    });
  });
}
