// Session variables through the host's in-process API (host.variables(id)): types and
// constraints, versions, metadata, limits, watches and the session lifecycle, each with
// the memory store and with the Redis store (a real redis-server). The same service
// answers the RPCs; packages/client/test/variables.test.ts covers the wire.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ErrorType,
  float64,
  Tensor,
  ToolBridgeHost,
  type VariableConstraints,
  type VariableType,
  type VariableUpdate,
} from "@toolbridge/server";
import { pino } from "pino";
import { fails } from "./support/assertions.js";
import { type RedisServer, startRedis } from "./support/redis-server.js";

const quiet = pino({ level: "silent" });

type HostOptions = NonNullable<ConstructorParameters<typeof ToolBridgeHost>[0]>;

let redis: RedisServer | undefined;
const hosts: ToolBridgeHost[] = [];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(hosts.map((host) => host.stop({ graceMs: 100 })));
  await redis?.stop();
});

const BACKENDS: { name: string; store: () => string }[] = [
  { name: "memory store", store: () => "memory" },
  { name: "Redis store", store: () => redis?.url ?? "redis://redis-not-started" },
];

/** Collects a watch's updates until `count` arrived or the watch ended. */
async function collect(iterable: AsyncIterable<VariableUpdate>, count: number): Promise<VariableUpdate[]> {
  const out: VariableUpdate[] = [];
  for await (const update of iterable) {
    out.push(update);
    if (out.length >= count) break;
  }
  return out;
}

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

for (const backend of BACKENDS) {
  describe(`variables with the ${backend.name}`, () => {
    const newHost = (options: HostOptions = {}) => {
      const host = new ToolBridgeHost({ logger: quiet, store: backend.store(), ...options });
      hosts.push(host);
      return host;
    };

    const session = async (options: HostOptions = {}) => {
      const host = newHost(options);
      const { id } = await host.createSession();
      return { host, id, vars: host.variables(id) };
    };

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

    describe("versions and metadata", () => {
      it("start at 1, bump on every write, and enforce expectedVersion", async () => {
        const { vars } = await session();
        const first = await vars.set("counter", 0);
        assert.equal(first.version, 1);
        assert.equal((await vars.set("counter", 1, { expectedVersion: 1 })).version, 2);
        await assert.rejects(
          vars.set("counter", 99, { expectedVersion: 1 }),
          fails(
            ErrorType.VersionConflict,
            (e) =>
              e.details.expected_version === "1" &&
              e.details.actual_version === "2" &&
              /read it again/.test(e.message),
          ),
        );
        assert.equal((await vars.get("counter")).value, 1);
        // expectedVersion 0: create only if missing.
        await assert.rejects(
          vars.set("counter", 5, { expectedVersion: 0 }),
          fails(ErrorType.VersionConflict),
        );
        assert.equal((await vars.set("fresh", "a", { expectedVersion: 0 })).version, 1);
        await assert.rejects(
          vars.set("other", 1, { expectedVersion: 3 }),
          fails(ErrorType.VersionConflict, (e) => e.details.actual_version === "0"),
        );
        await assert.rejects(vars.set("x", 1, { expectedVersion: -1 }), fails(ErrorType.ValidationError));
      });

      it("deletes bump the version too, and a recreated variable never reuses one", async () => {
        const { vars } = await session();
        await vars.set("v", "a");
        await vars.set("v", "b");
        await assert.rejects(vars.delete("v", { expectedVersion: 1 }), fails(ErrorType.VersionConflict));
        await vars.delete("v", { expectedVersion: 2 });
        await assert.rejects(
          vars.get("v"),
          fails(ErrorType.VariableNotFound, (e) => e.details.variable === "v"),
        );
        await assert.rejects(vars.delete("v"), fails(ErrorType.VariableNotFound));
        const again = await vars.set("v", "c");
        assert.ok(again.version > 3, `recreated at ${again.version}`);
      });

      it("record type, writers, timestamps and merged tags; createIfMissing false needs an existing variable", async () => {
        const { vars } = await session();
        const created = await vars.set("x", 1, { tags: { source: "app", stage: "a" } });
        assert.deepEqual(
          [created.type, created.declared, created.createdBy, created.updatedBy, created.tags],
          ["integer", false, "typescript", "typescript", { source: "app", stage: "a" }],
        );
        await sleep(5);
        const updated = await vars.set("x", "now a string", { tags: { stage: "b" } });
        assert.equal(updated.type, "string");
        assert.equal(updated.version, 2);
        assert.deepEqual(updated.tags, { source: "app", stage: "b" });
        assert.ok(updated.updatedAt > created.updatedAt);
        assert.deepEqual(updated.createdAt, created.createdAt);
        await assert.rejects(
          vars.set("missing", 1, { createIfMissing: false }),
          fails(ErrorType.VariableNotFound, (e) => /create_if_missing/.test(e.message)),
        );
      });

      it("lists sorted by name, filtered by prefix", async () => {
        const { vars } = await session();
        for (const name of ["b.two", "a.one", "b.one", "c"]) await vars.set(name, name);
        assert.deepEqual(
          (await vars.list()).map((v) => v.name),
          ["a.one", "b.one", "b.two", "c"],
        );
        assert.deepEqual(
          (await vars.list({ prefix: "b." })).map((v) => v.value),
          ["b.one", "b.two"],
        );
      });
    });

    describe("input checks and limits", () => {
      it("refuse bad names, oversized values, too many variables and bad tags, and keep serving", async () => {
        const { vars } = await session({ maxVariableBytes: 1024, maxVariablesPerSession: 3 });
        for (const name of ["", "1abc", "has space", "a/b", "x".repeat(129), "ünï"]) {
          await assert.rejects(
            vars.set(name, 1),
            fails(ErrorType.ValidationError, (e) => e.details.field === "variable_name"),
          );
        }
        await vars.set(`_${"x".repeat(127)}`, 1);
        await assert.rejects(
          vars.set("big", "x".repeat(2000)),
          fails(
            ErrorType.InvalidValue,
            (e) =>
              e.details.reason === "too_large" &&
              e.details.limit === "1024" &&
              /maxVariableBytes/.test(e.message),
          ),
        );
        await assert.rejects(
          vars.set("fn", () => 1),
          fails(ErrorType.InvalidValue, (e) => /variable 'fn'/.test(e.message)),
        );
        await assert.rejects(vars.set("t", 1, { tags: { "": "x" } }), fails(ErrorType.ValidationError));
        await vars.set("two", 2);
        await vars.set("three", 3);
        await assert.rejects(
          vars.set("four", 4),
          fails(ErrorType.ResourceExhausted, (e) => /maxVariablesPerSession/.test(e.message)),
        );
        await vars.set("three", 33); // updating an existing one is fine at the limit
      });

      it("fail every operation on an unknown session with SessionNotFound", async () => {
        const host = newHost();
        const vars = host.variables("nope");
        await assert.rejects(vars.get("x"), fails(ErrorType.SessionNotFound));
        await assert.rejects(vars.set("x", 1), fails(ErrorType.SessionNotFound));
        await assert.rejects(vars.delete("x"), fails(ErrorType.SessionNotFound));
        await assert.rejects(vars.list(), fails(ErrorType.SessionNotFound));
        const watch = vars.watch();
        await assert.rejects(watch.ready(), fails(ErrorType.SessionNotFound));
        await assert.rejects(collect(watch, 1), fails(ErrorType.SessionNotFound));
      });
    });

    describe("watch (in process)", () => {
      it("delivers initial values, then every change in commit order, filtered by name", async () => {
        const { vars, host, id } = await session();
        await vars.set("a", 0);
        await vars.set("b", "x");
        const all = vars.watch([], { includeInitialValues: true });
        const onlyA = vars.watch(["a"]);
        await Promise.all([all.ready(), onlyA.ready()]);
        for (let i = 1; i <= 20; i++) await vars.set("a", i);
        await vars.delete("b");
        await host.cleanupSession(id);
        const seen = await collect(all, 100);
        assert.deepEqual(
          seen.map((u) => [u.kind, "name" in u ? u.name : "", "version" in u ? u.version : 0]),
          [
            ["initial", "a", 1],
            ["initial", "b", 1],
            ...Array.from({ length: 20 }, (_, i) => ["set", "a", i + 2]),
            ["deleted", "b", 2],
            ["session_ended", "", 0],
          ],
        );
        const last = seen.at(-1);
        assert.equal(last?.kind === "session_ended" ? last.reason : "", "cleanup");
        const a = await collect(onlyA, 100);
        assert.deepEqual(
          a.map((u) => (u.kind === "set" ? u.variable.value : u.kind)),
          [...Array.from({ length: 20 }, (_, i) => i + 1), "session_ended"],
        );
      });

      it("ends a watcher that falls too far behind with ResourceExhausted, never dropping silently", async () => {
        const { vars } = await session({ watchBufferBytes: 4096 });
        const watch = vars.watch();
        await watch.ready();
        for (let i = 0; i < 20; i++) await vars.set("blob", "x".repeat(500) + i);
        const seen: VariableUpdate[] = [];
        await assert.rejects(
          async () => {
            for await (const update of watch) seen.push(update);
          },
          fails(ErrorType.ResourceExhausted, (e) => /watchBufferBytes/.test(e.message)),
        );
        assert.deepEqual(seen, []);
        // Watching again with initial values resynchronizes.
        const again = await collect(vars.watch(["blob"], { includeInitialValues: true }), 1);
        assert.equal(again[0]?.kind === "initial" ? again[0].variable.value : "", `${"x".repeat(500)}19`);
      });

      it("resumes after the last sequence seen: the missed changes, then live ones, no gap or duplicate", async () => {
        const { vars } = await session();
        const first = vars.watch(["x", "y"]);
        await first.ready();
        await vars.set("x", 1);
        await vars.set("skipped", 0);
        await vars.set("y", 1);
        const seen = await collect(first, 2);
        first.close();
        const last = seen.at(-1);
        const lastSequence = last !== undefined && "sequence" in last ? last.sequence : 0;
        assert.deepEqual(
          seen.map((u) => (u.kind === "set" ? `${u.name}@${u.sequence}` : u.kind)),
          ["x@1", "y@3"],
        );
        await vars.set("x", 2);
        await vars.delete("y");
        const resumed = vars.watch(["x", "y"], { resumeAfterSequence: lastSequence });
        await resumed.ready();
        await vars.set("x", 3);
        assert.deepEqual(
          (await collect(resumed, 3)).map(
            (u) => `${u.kind}:${"name" in u ? u.name : ""}@${"sequence" in u ? u.sequence : 0}`,
          ),
          ["set:x@4", "deleted:y@5", "set:x@6"],
        );
        assert.throws(
          () => vars.watch([], { resumeAfterSequence: 1, includeInitialValues: true }),
          fails(ErrorType.ValidationError),
        );
        const ahead = vars.watch([], { resumeAfterSequence: 99 });
        await assert.rejects(
          ahead.ready(),
          fails(ErrorType.ValidationError, (e) => /re-created|created again/.test(e.message)),
        );
      });

      it("stops on close() or an aborted signal", async () => {
        const { vars } = await session();
        const controller = new AbortController();
        const watch = vars.watch([], { signal: controller.signal });
        await watch.ready();
        await vars.set("a", 1);
        const seen: string[] = [];
        for await (const update of watch) {
          seen.push(update.kind);
          // The update is in: aborting now must end the loop, with nothing more.
          controller.abort();
        }
        assert.deepEqual(seen, ["set"]);
        const closed = vars.watch();
        closed.close();
        assert.deepEqual(await collect(closed, 1), []);
      });
    });

    describe("variables and the session lifecycle", () => {
      it("vanish when the session expires, and a session recreated with the id starts empty", async () => {
        const host = newHost({
          host: "127.0.0.1",
          port: 0,
          sessionTimeoutMs: 300,
          sweepIntervalMs: 50,
        });
        await host.start();
        const { id } = await host.createSession();
        const vars = host.variables(id);
        try {
          await vars.set("kept", [1, 2, 3]);
          const watch = vars.watch();
          await watch.ready();
          const updates = await collect(watch, 10);
          assert.deepEqual(updates, [{ kind: "session_ended", sessionId: id, reason: "expired" }]);
          await assert.rejects(vars.get("kept"), fails(ErrorType.SessionNotFound));
          await host.createSession(id);
          assert.deepEqual(await vars.list(), []);
        } finally {
          await host.stop({ graceMs: 100 });
        }
      });

      it("keep the session alive when used, like every other call", async () => {
        const host = newHost({
          host: "127.0.0.1",
          port: 0,
          sessionTimeoutMs: 500,
          sweepIntervalMs: 50,
        });
        await host.start();
        const vars = host.variables((await host.createSession()).id);
        try {
          // Six uses 150 ms apart span 900 ms, well past the 500 ms timeout.
          for (let i = 0; i < 6; i++) {
            await sleep(150);
            await vars.set("tick", i);
          }
          assert.equal((await vars.get("tick")).value, 5);
        } finally {
          await host.stop({ graceMs: 100 });
        }
      });
    });
  });
}
