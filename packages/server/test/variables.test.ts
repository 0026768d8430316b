// Session variables through the host's in-process API (host.variables(id)): versions,
// metadata, limits, watches and the session lifecycle, each with the memory store and with
// the Redis store (a real redis-server); variables-types.test.ts covers declared types and
// constraints. The same service answers the RPCs; packages/client/test/variables.test.ts
// covers the wire.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorType, type VariableUpdate } from "@toolbridge/server";
import { fails } from "./support/assertions.js";
import { collect, variableBackends } from "./support/variable-hosts.js";

for (const backend of variableBackends()) {
  describe(`variables with the ${backend.name}`, () => {
    const { newHost, session } = backend;

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
