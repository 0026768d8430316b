// The session store contract of the variables part (VariableStore), run against both stores
// (test/support/store-nodes.ts): commits, versions, limits, the change feed across nodes and
// the history kept for resuming watches.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BridgeError, ErrorType, type SessionStore } from "@toolbridge/server";
import { fails } from "./support/assertions.js";
import { ALICE, newId, remove, storeBackends, versionOf, write } from "./support/store-nodes.js";
import { waitUntil } from "./support/wait.js";

const { backends } = storeBackends();

for (const backend of backends) {
  describe(`variables (VariableStore): ${backend.name}`, () => {
    it("counts the bytes of a session's variables across nodes; shrinking and deleting free them", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      const budget = { maxSessionBytes: 600 };
      await write(a, id, "x", "x".repeat(150), budget);
      await write(b, id, "y", "y".repeat(150), budget);
      await assert.rejects(
        write(a, id, "z", "z".repeat(150), budget),
        fails(ErrorType.ResourceExhausted, (e) => e.details.quota === "maxSessionVariableBytes"),
      );
      assert.equal(await b.variables.get(id, "z", Date.now()), undefined);
      await write(b, id, "x", "small", budget);
      await write(a, id, "z", "z".repeat(150), budget);
      await assert.rejects(write(b, id, "w", "w".repeat(150), budget), fails(ErrorType.ResourceExhausted));
      await remove(a, id, "y");
      await write(b, id, "w", "w".repeat(150), budget);
    });

    it("commits versions, refuses stale expected versions, and never reuses a deleted version", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      assert.equal(versionOf(await write(a, id, "x", "one")), 1n);
      assert.equal(versionOf(await write(b, id, "x", "two", { expectedVersion: 1n })), 2n);
      // A's last view of x is version 1: the store must judge expectedVersion 2 on the current slot.
      assert.equal(versionOf(await write(a, id, "x", "three", { expectedVersion: 2n })), 3n);
      await assert.rejects(
        write(b, id, "x", "stale", { expectedVersion: 2n }),
        fails(ErrorType.VersionConflict, (e) => e.details.actual_version === "3"),
      );
      assert.equal((await a.variables.get(id, "x", Date.now()))?.value?.kind?.$case, "stringValue");
      assert.equal(versionOf(await remove(b, id, "x", 3n)), 4n);
      assert.equal(await a.variables.get(id, "x", Date.now()), undefined);
      await assert.rejects(remove(a, id, "x"), fails(ErrorType.VariableNotFound));
      assert.equal(versionOf(await write(a, id, "x", "again")), 5n);
      await assert.rejects(
        write(b, id, "fresh", 1, { createIfMissing: false }),
        fails(ErrorType.VariableNotFound),
      );
      assert.equal(await b.variables.get(id, "fresh", Date.now()), undefined);
    });

    it("counts variables against the mutation's limit across nodes, and lists them atomically", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      await write(a, id, "b.two", 2);
      await write(b, id, "a.one", 1);
      await write(a, id, "b.one", 3);
      await assert.rejects(write(b, id, "c", 4), fails(ErrorType.ResourceExhausted)); // maxVariables 3
      await write(b, id, "b.two", 22); // updating at the limit is fine
      assert.equal(await a.variables.count(id, Date.now()), 3);
      const all = await b.variables.list(id, {}, Date.now());
      assert.deepEqual(
        all.variables.map((v) => v.name),
        ["a.one", "b.one", "b.two"],
      );
      assert.equal(all.sequence, 4n);
      assert.deepEqual(
        (await a.variables.list(id, { prefix: "b." }, Date.now())).variables.map((v) => v.name),
        ["b.one", "b.two"],
      );
      assert.deepEqual(
        (await a.variables.list(id, { names: new Set(["a.one", "missing"]) }, Date.now())).variables.map(
          (v) => v.name,
        ),
        ["a.one"],
      );
    });

    it("racing read-modify-write loops through two nodes lose no update", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      await write(a, id, "counter", 0);
      // In rounds: every writer still at work reads, and only when all have read (a barrier)
      // do they all write that version at once, so each round with two or more is a race.
      let conflicts = 0;
      const writers: [SessionStore, number][] = [
        [a, 40],
        [b, 40],
        [a, 20],
      ];
      for (let round = 0; writers.some(([, left]) => left > 0); round++) {
        const racing = writers.filter(([, left]) => left > 0);
        const read = await Promise.all(
          racing.map(([store]) => store.variables.get(id, "counter", Date.now())),
        );
        const written = await Promise.allSettled(
          racing.map(([store], k) => {
            const current = read[k];
            const value = Number(current?.value?.kind?.$case === "intValue" ? current.value.kind.value : -1);
            return write(store, id, "counter", value + 1, { expectedVersion: current?.version ?? 0n });
          }),
        );
        written.forEach((result, k) => {
          const writer = racing[k];
          if (result.status === "fulfilled") {
            if (writer !== undefined) writer[1]--;
            return;
          }
          if (!(result.reason instanceof BridgeError && result.reason.type === ErrorType.VersionConflict)) {
            throw result.reason;
          }
          conflicts++;
        });
        const committed = written.filter((result) => result.status === "fulfilled").length;
        assert.equal(committed, 1, `round ${round}: ${committed} of ${racing.length} writes of one version`);
      }
      const counter = await b.variables.get(id, "counter", Date.now());
      assert.deepEqual([counter?.value?.kind, counter?.version], [{ $case: "intValue", value: 100n }, 101n]);
      // 100 rounds of one commit each; only the rounds with a single writer left have no loser.
      assert.ok(conflicts >= 60, `${conflicts} conflicts`);
      // Blind writes racing: every commit gets its own version.
      const versions = (
        await Promise.all(Array.from({ length: 30 }, (_, i) => write(i % 2 === 0 ? a : b, id, "blind", i)))
      ).map(versionOf);
      assert.deepEqual(
        [...versions].sort((x, y) => Number(x - y)),
        Array.from({ length: 30 }, (_, i) => BigInt(i + 1)),
      );
    });

    it("delivers every change, from either node, to a follower in commit order without gap or duplicate", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      await write(b, id, "before", 0);
      const seen: bigint[] = [];
      a.variables.onChanged((change) => {
        if (change.sessionId === id) seen.push(change.sequence);
      });
      const following = await a.variables.follow(id, Date.now());
      assert.equal(following.sequence, 1n);
      await Promise.all([
        (async () => {
          for (let i = 0; i < 40; i++) await write(a, id, "x", i);
        })(),
        (async () => {
          for (let i = 0; i < 40; i++) await write(b, id, "y", i);
        })(),
      ]);
      await remove(b, id, "x");
      await waitUntil(() => seen.length >= 81, `81 changes delivered (${seen.length})`);
      assert.deepEqual(
        seen,
        Array.from({ length: 81 }, (_, i) => BigInt(i + 2)),
      );
      following.close();
      await assert.rejects(
        a.variables.follow("no-such-session", Date.now()),
        fails(ErrorType.SessionNotFound),
      );
    });

    it("keeps the latest changes for resuming, and says when a resume point is gone or ahead", async () => {
      const { a, b } = await backend.open({ watchHistory: 5 });
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      for (let i = 0; i < 3; i++) await write(a, id, "x", i);
      const history = await b.variables.changesSince(id, 1n, Date.now());
      assert.equal(history.sequence, 3n);
      assert.deepEqual(
        history.changes.map((c) => [c.sequence, c.name, versionOf(c)]),
        [
          [2n, "x", 2n],
          [3n, "x", 3n],
        ],
      );
      const latest = history.changes.at(-1)?.result;
      assert.equal(latest?.kind === "set" ? latest.variable.value?.kind?.$case : "", "intValue");
      assert.deepEqual((await a.variables.changesSince(id, 3n, Date.now())).changes, []);
      await assert.rejects(
        a.variables.changesSince(id, 4n, Date.now()),
        fails(ErrorType.ValidationError, (e) => e.details.field === "resume_after_sequence"),
      );
      for (let i = 0; i < 300; i++) await write(b, id, "y", i);
      await assert.rejects(
        a.variables.changesSince(id, 1n, Date.now()),
        fails(ErrorType.ResourceExhausted, (e) => e.details.reason === "history_trimmed"),
      );
      const recent = await a.variables.changesSince(id, 298n, Date.now());
      assert.deepEqual(
        recent.changes.map((c) => c.sequence),
        [299n, 300n, 301n, 302n, 303n],
      );
    });

    it("keeps only the changes its variables leave room for in the session's byte quota", async () => {
      const { a, b } = await backend.open({ watchHistory: 100, maxSessionBytes: 10_000 });
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      for (let i = 0; i < 6; i++) await write(i % 2 === 0 ? a : b, id, "x", `${i}`.repeat(3000));
      // x takes ~3 KB of the 10 KB: two of its 3 KB changes fit beside it, the third does not.
      const kept = await b.variables.changesSince(id, 4n, Date.now());
      assert.deepEqual(
        kept.changes.map((c) => c.sequence),
        [5n, 6n],
      );
      const latest = kept.changes.at(-1)?.result;
      assert.equal(latest?.kind === "set" ? latest.variable.value?.kind?.$case : "", "stringValue");
      await assert.rejects(
        a.variables.changesSince(id, 3n, Date.now()),
        fails(
          ErrorType.ResourceExhausted,
          (e) => e.details.reason === "history_trimmed" && e.details.oldest === "5",
        ),
      );
      // A change larger than what the variables leave is not kept at all; the next one fits again.
      await write(a, id, "x", "big".repeat(2500));
      await assert.rejects(a.variables.changesSince(id, 6n, Date.now()), fails(ErrorType.ResourceExhausted));
      assert.deepEqual((await b.variables.changesSince(id, 7n, Date.now())).changes, []);
      await write(b, id, "x", "small");
      assert.deepEqual(
        (await a.variables.changesSince(id, 7n, Date.now())).changes.map((c) => c.sequence),
        [8n],
      );
    });

    it("a refused mutation changes nothing, and a session created again under an id starts anew", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      await write(a, id, "x", 1);
      await assert.rejects(
        a.variables.mutate(
          id,
          "x",
          () => {
            throw new BridgeError(ErrorType.ValidationError, "refused");
          },
          Date.now(),
        ),
        fails(ErrorType.ValidationError),
      );
      assert.equal((await b.variables.get(id, "x", Date.now()))?.version, 1n);
      await b.sessions.delete(id, "cleanup");
      await assert.rejects(write(a, id, "x", 2), fails(ErrorType.SessionNotFound));
      await b.sessions.create(id, {}, Date.now(), ALICE);
      await write(b, id, "x", "new", { writer: "python" });
      // A's last view of x belongs to the ended session: its write must build on the new one.
      const written = await write(a, id, "x", "newer");
      assert.equal(versionOf(written), 2n);
      assert.equal(
        written.result.kind === "set" ? written.result.variable.metadata?.createdBy : "",
        "python",
      );
      assert.equal((await a.variables.list(id, {}, Date.now())).sequence, 2n);
    });

    it("every variable operation on an unknown session fails with SessionNotFound", async () => {
      const { a } = await backend.open();
      const now = Date.now();
      await assert.rejects(a.variables.get("gone", "x", now), fails(ErrorType.SessionNotFound));
      await assert.rejects(a.variables.list("gone", {}, now), fails(ErrorType.SessionNotFound));
      await assert.rejects(a.variables.count("gone", now), fails(ErrorType.SessionNotFound));
      await assert.rejects(write(a, "gone", "x", 1), fails(ErrorType.SessionNotFound));
      await assert.rejects(a.variables.changesSince("gone", 0n, now), fails(ErrorType.SessionNotFound));
    });
  });
}
