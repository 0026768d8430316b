// The SessionStore contract, one suite run against both stores: the in-memory store and
// the Redis store on a real redis-server. "Two nodes" are two store objects sharing one
// Redis (the memory store plays both nodes itself), so every cross-node guarantee the
// host relies on is checked here: commits, versions, limits, expiry, change delivery.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { encodeVariableValue } from "@toolbridge/core";
import {
  BridgeError,
  ErrorType,
  InMemorySessionStore,
  RedisSessionStore,
  type SessionEnded,
  type SessionStore,
  type SessionStoreOptions,
  type VariableChange,
} from "@toolbridge/server";
import { applyDelete, applySet } from "../src/variables/semantics.js";
import { fails } from "./support/assertions.js";
import { type RedisServer, startRedis } from "./support/redis-server.js";

interface Nodes {
  readonly a: SessionStore;
  readonly b: SessionStore;
}

interface Backend {
  readonly name: string;
  open(options?: Partial<SessionStoreOptions>): Promise<Nodes>;
}

/** Two call fingerprints (tools/replay.ts callFingerprint): one call, and another. */
const SAME_CALL = "a1".repeat(32);
const OTHER_CALL = "b2".repeat(32);

const DEFAULTS: SessionStoreOptions = { timeoutMs: 60_000, maxSessions: 100, watchHistory: 100 };

let redis: RedisServer | undefined;
let prefixes = 0;
const opened: SessionStore[] = [];

const BACKENDS: Backend[] = [
  {
    name: "memory store",
    async open(options = {}) {
      const store = new InMemorySessionStore({ ...DEFAULTS, ...options });
      return { a: store, b: store };
    },
  },
  {
    name: "Redis store",
    async open(options = {}) {
      if (redis === undefined) throw new Error("redis-server is not running");
      const keyPrefix = `contract${++prefixes}:`;
      const [a, b] = [0, 1].map(
        () => new RedisSessionStore({ ...DEFAULTS, ...options, url: redis?.url ?? "", keyPrefix }),
      ) as [RedisSessionStore, RedisSessionStore];
      opened.push(a, b);
      return { a, b };
    },
  },
];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await redis?.stop();
});

interface WriteOptions {
  expectedVersion?: bigint;
  writer?: string;
  createIfMissing?: boolean;
  maxSessionBytes?: number;
}

function write(
  store: SessionStore,
  sessionId: string,
  name: string,
  value: unknown,
  options: WriteOptions = {},
) {
  const now = Date.now();
  return store.mutateVariable(
    sessionId,
    name,
    (slot) =>
      applySet(slot, {
        sessionId,
        name,
        value: encodeVariableValue(name, value),
        declaration: undefined,
        writer: options.writer ?? "typescript",
        writerLabel: options.writer ?? "typescript",
        tags: {},
        createIfMissing: options.createIfMissing ?? true,
        expectedVersion: options.expectedVersion,
        now,
        maxVariables: 3,
        ...(options.maxSessionBytes === undefined
          ? {}
          : { quotas: { maxSessionBytes: options.maxSessionBytes } }),
      }),
    now,
  );
}

function remove(store: SessionStore, sessionId: string, name: string, expectedVersion?: bigint) {
  return store.mutateVariable(
    sessionId,
    name,
    (slot) => applyDelete(slot, sessionId, name, expectedVersion),
    Date.now(),
  );
}

function versionOf(change: VariableChange): bigint {
  return change.result.kind === "set" ? change.result.variable.version : change.result.version;
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await sleep(25);
  }
  assert.fail(`gave up waiting: ${what}`);
}

/** The owner of the sessions the tests create. */
const ALICE = { owner: "alice" };

let ids = 0;
const newId = () => `contract-${process.pid}-${++ids}`;

for (const backend of BACKENDS) {
  describe(`SessionStore contract: ${backend.name}`, () => {
    it("creates, attaches, refreshes and deletes a session; every node hears of the end", async () => {
      const { a, b } = await backend.open();
      const endedA: SessionEnded[] = [];
      const endedB: SessionEnded[] = [];
      a.onSessionEnded((event) => endedA.push(event));
      if (b !== a) b.onSessionEnded((event) => endedB.push(event));
      const id = newId();
      const now = Date.now();
      const created = await a.create(id, { owner: "ts" }, now, ALICE);
      assert.equal(created.created, true);
      assert.deepEqual(
        [created.record.id, created.record.metadata, created.record.createdAt],
        [id, { owner: "ts" }, now],
      );
      const attached = await b.create(id, { ignored: "yes" }, now + 5, ALICE);
      assert.equal(attached.created, false);
      assert.deepEqual(attached.record.metadata, { owner: "ts" });
      assert.equal((await b.touch(id, now + 10))?.lastAccessedAt, now + 10);
      assert.equal((await a.get(id, now + 10))?.createdAt, now);
      assert.equal(await a.get("no-such-session", now), undefined);
      assert.equal(await a.touch("no-such-session", now), undefined);
      assert.equal(await b.delete(id, "cleanup"), true);
      assert.equal(await a.delete(id, "cleanup"), false);
      assert.equal(await a.get(id, Date.now()), undefined);
      assert.equal(await a.touch(id, Date.now()), undefined);
      assert.deepEqual(
        endedA
          .concat(endedB)
          .filter((e) => e.id === id)
          .slice(0, 1),
        [{ id, reason: "cleanup" }],
      );
      if (b !== a) await until(() => endedA.some((e) => e.id === id), "node A hears of the cleanup on B");
    });

    it("enforces the session limit across nodes; attaching and freed slots are fine", async () => {
      const { a, b } = await backend.open({ maxSessions: 2 });
      const [first, second, third] = [newId(), newId(), newId()];
      await a.create(first, {}, Date.now(), ALICE);
      await b.create(second, {}, Date.now(), ALICE);
      await assert.rejects(
        a.create(third, {}, Date.now(), ALICE),
        fails(ErrorType.SessionLimitExceeded, (e) => e.details.limit === "2"),
      );
      await assert.rejects(b.create(third, {}, Date.now(), ALICE), fails(ErrorType.SessionLimitExceeded));
      assert.equal((await b.create(first, {}, Date.now(), ALICE)).created, false);
      assert.equal(await a.count(), 2);
      await b.delete(first, "cleanup");
      assert.equal((await a.create(third, {}, Date.now(), ALICE)).created, true);
      assert.equal(await b.count(), 2);
    });

    it("records the owner on every node; another owner can neither join nor end the session", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
      assert.equal((await b.get(id, Date.now()))?.owner, "alice");
      assert.equal((await b.touch(id, Date.now()))?.owner, "alice");
      await assert.rejects(
        b.create(id, {}, Date.now(), { owner: "bob" }),
        fails(ErrorType.SessionNotFound, (e) => !/alice/.test(e.message)),
      );
      // The host itself may attach to any session; it does not become the owner.
      const attached = await b.create(id, {}, Date.now(), { owner: "@host", anyOwner: true });
      assert.deepEqual([attached.created, attached.record.owner], [false, "alice"]);
      assert.equal(await b.delete(id, "cleanup", "bob"), false);
      assert.equal((await a.get(id, Date.now()))?.owner, "alice", "bob's cleanup left it alone");
      assert.equal(await b.delete(id, "cleanup", "alice"), true);
    });

    it("counts an owner's sessions across nodes; a refused attach counts for nobody", async () => {
      const { a, b } = await backend.open();
      const perOwner = (owner: string) => ({ owner, maxPerOwner: 2 });
      const [first, second, third] = [newId(), newId(), newId()];
      await a.create(first, {}, Date.now(), perOwner("alice"));
      await b.create(second, {}, Date.now(), perOwner("alice"));
      for (const node of [a, b]) {
        await assert.rejects(
          node.create(third, {}, Date.now(), perOwner("alice")),
          fails(ErrorType.SessionLimitExceeded, (e) => e.details.quota === "maxSessionsPerPrincipal"),
        );
      }
      assert.equal((await a.create(first, {}, Date.now(), perOwner("alice"))).created, false);
      await assert.rejects(
        b.create(first, {}, Date.now(), perOwner("bob")),
        fails(ErrorType.SessionNotFound),
      );
      await b.create(newId(), {}, Date.now(), perOwner("bob"));
      await a.create(newId(), {}, Date.now(), perOwner("bob"));
      await b.delete(second, "cleanup");
      assert.equal((await a.create(third, {}, Date.now(), perOwner("alice"))).created, true);
    });

    it("counts the bytes of a session's variables across nodes; shrinking and deleting free them", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
      const budget = { maxSessionBytes: 600 };
      await write(a, id, "x", "x".repeat(150), budget);
      await write(b, id, "y", "y".repeat(150), budget);
      await assert.rejects(
        write(a, id, "z", "z".repeat(150), budget),
        fails(ErrorType.ResourceExhausted, (e) => e.details.quota === "maxSessionVariableBytes"),
      );
      assert.equal(await b.getVariable(id, "z", Date.now()), undefined);
      await write(b, id, "x", "small", budget);
      await write(a, id, "z", "z".repeat(150), budget);
      await assert.rejects(write(b, id, "w", "w".repeat(150), budget), fails(ErrorType.ResourceExhausted));
      await remove(a, id, "y");
      await write(b, id, "w", "w".repeat(150), budget);
    });

    it("expires an idle session (sliding TTL), tells every node, and keeps a used one alive", async () => {
      const { a, b } = await backend.open({ timeoutMs: 300 });
      const ended: SessionEnded[] = [];
      a.onSessionEnded((event) => ended.push(event));
      const [idle, used] = [newId(), newId()];
      await a.create(idle, {}, Date.now(), ALICE);
      await a.create(used, {}, Date.now(), ALICE);
      const started = Date.now();
      // Used every 50 ms through either node for three timeouts: it must stay.
      for (let i = 0; Date.now() - started < 900; i++) {
        assert.notEqual(await (i % 2 === 0 ? a : b).touch(used, Date.now()), undefined, `touch ${i}`);
        await b.sweep(Date.now());
        await sleep(50);
      }
      await until(async () => {
        await b.sweep(Date.now());
        return ended.some((e) => e.id === idle);
      }, "the idle session expires");
      assert.deepEqual(
        ended.filter((e) => e.id === idle),
        [{ id: idle, reason: "expired" }],
      );
      assert.equal(await a.get(idle, Date.now()), undefined);
      await assert.rejects(a.getVariable(idle, "x", Date.now()), fails(ErrorType.SessionNotFound));
      assert.notEqual(await a.get(used, Date.now()), undefined);
      assert.equal(await b.count(), 1);
    });

    it("commits versions, refuses stale expected versions, and never reuses a deleted version", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
      assert.equal(versionOf(await write(a, id, "x", "one")), 1n);
      assert.equal(versionOf(await write(b, id, "x", "two", { expectedVersion: 1n })), 2n);
      // A's last view of x is version 1: the store must judge expectedVersion 2 on the current slot.
      assert.equal(versionOf(await write(a, id, "x", "three", { expectedVersion: 2n })), 3n);
      await assert.rejects(
        write(b, id, "x", "stale", { expectedVersion: 2n }),
        fails(ErrorType.VersionConflict, (e) => e.details.actual_version === "3"),
      );
      assert.equal((await a.getVariable(id, "x", Date.now()))?.value?.kind?.$case, "stringValue");
      assert.equal(versionOf(await remove(b, id, "x", 3n)), 4n);
      assert.equal(await a.getVariable(id, "x", Date.now()), undefined);
      await assert.rejects(remove(a, id, "x"), fails(ErrorType.VariableNotFound));
      assert.equal(versionOf(await write(a, id, "x", "again")), 5n);
      await assert.rejects(
        write(b, id, "fresh", 1, { createIfMissing: false }),
        fails(ErrorType.VariableNotFound),
      );
      assert.equal(await b.getVariable(id, "fresh", Date.now()), undefined);
    });

    it("counts variables against the mutation's limit across nodes, and lists them atomically", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
      await write(a, id, "b.two", 2);
      await write(b, id, "a.one", 1);
      await write(a, id, "b.one", 3);
      await assert.rejects(write(b, id, "c", 4), fails(ErrorType.ResourceExhausted)); // maxVariables 3
      await write(b, id, "b.two", 22); // updating at the limit is fine
      assert.equal(await a.countVariables(id, Date.now()), 3);
      const all = await b.listVariables(id, {}, Date.now());
      assert.deepEqual(
        all.variables.map((v) => v.name),
        ["a.one", "b.one", "b.two"],
      );
      assert.equal(all.sequence, 4n);
      assert.deepEqual(
        (await a.listVariables(id, { prefix: "b." }, Date.now())).variables.map((v) => v.name),
        ["b.one", "b.two"],
      );
      assert.deepEqual(
        (await a.listVariables(id, { names: new Set(["a.one", "missing"]) }, Date.now())).variables.map(
          (v) => v.name,
        ),
        ["a.one"],
      );
    });

    it("racing read-modify-write loops through two nodes lose no update", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
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
        const read = await Promise.all(racing.map(([store]) => store.getVariable(id, "counter", Date.now())));
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
      const counter = await b.getVariable(id, "counter", Date.now());
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
      await a.create(id, {}, Date.now(), ALICE);
      await write(b, id, "before", 0);
      const seen: bigint[] = [];
      a.onVariableChanged((change) => {
        if (change.sessionId === id) seen.push(change.sequence);
      });
      const following = await a.follow(id, Date.now());
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
      await until(() => seen.length >= 81, `81 changes delivered (${seen.length})`);
      assert.deepEqual(
        seen,
        Array.from({ length: 81 }, (_, i) => BigInt(i + 2)),
      );
      following.close();
      await assert.rejects(a.follow("no-such-session", Date.now()), fails(ErrorType.SessionNotFound));
    });

    it("keeps the latest changes for resuming, and says when a resume point is gone or ahead", async () => {
      const { a, b } = await backend.open({ watchHistory: 5 });
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
      for (let i = 0; i < 3; i++) await write(a, id, "x", i);
      const history = await b.changesSince(id, 1n, Date.now());
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
      assert.deepEqual((await a.changesSince(id, 3n, Date.now())).changes, []);
      await assert.rejects(
        a.changesSince(id, 4n, Date.now()),
        fails(ErrorType.ValidationError, (e) => e.details.field === "resume_after_sequence"),
      );
      for (let i = 0; i < 300; i++) await write(b, id, "y", i);
      await assert.rejects(
        a.changesSince(id, 1n, Date.now()),
        fails(ErrorType.ResourceExhausted, (e) => e.details.reason === "history_trimmed"),
      );
      const recent = await a.changesSince(id, 298n, Date.now());
      assert.deepEqual(
        recent.changes.map((c) => c.sequence),
        [299n, 300n, 301n, 302n, 303n],
      );
    });

    it("keeps only the changes its variables leave room for in the session's byte quota", async () => {
      const { a, b } = await backend.open({ watchHistory: 100, maxSessionBytes: 10_000 });
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
      for (let i = 0; i < 6; i++) await write(i % 2 === 0 ? a : b, id, "x", `${i}`.repeat(3000));
      // x takes ~3 KB of the 10 KB: two of its 3 KB changes fit beside it, the third does not.
      const kept = await b.changesSince(id, 4n, Date.now());
      assert.deepEqual(
        kept.changes.map((c) => c.sequence),
        [5n, 6n],
      );
      const latest = kept.changes.at(-1)?.result;
      assert.equal(latest?.kind === "set" ? latest.variable.value?.kind?.$case : "", "stringValue");
      await assert.rejects(
        a.changesSince(id, 3n, Date.now()),
        fails(
          ErrorType.ResourceExhausted,
          (e) => e.details.reason === "history_trimmed" && e.details.oldest === "5",
        ),
      );
      // A change larger than what the variables leave is not kept at all; the next one fits again.
      await write(a, id, "x", "big".repeat(2500));
      await assert.rejects(a.changesSince(id, 6n, Date.now()), fails(ErrorType.ResourceExhausted));
      assert.deepEqual((await b.changesSince(id, 7n, Date.now())).changes, []);
      await write(b, id, "x", "small");
      assert.deepEqual(
        (await a.changesSince(id, 7n, Date.now())).changes.map((c) => c.sequence),
        [8n],
      );
    });

    it("keeps call records within their bytes per session, dropping the oldest first", async () => {
      const { a, b } = await backend.open({
        callRecords: { windowMs: 60_000, maxRecords: 100, maxBytes: 2500 },
      });
      const id = newId();
      const now = Date.now();
      await a.create(id, {}, now, ALICE);
      // Each record counts its 1000-byte outcome and its id (and a little more): two fit, three do not.
      const outcome = new Uint8Array(1000).fill(7);
      for (const request of ["q1", "q2", "q3", "q4"]) {
        assert.equal(
          (await a.claimCall(id, request, { fingerprint: SAME_CALL, node: "A", until: now + 5_000 }, now))
            .state,
          "claimed",
        );
        await a.settleCall(id, request, "A", outcome, now);
      }
      const states = [];
      for (const request of ["q4", "q3", "q2", "q1"]) {
        states.push(
          (await b.claimCall(id, request, { fingerprint: SAME_CALL, node: "B", until: now + 5_000 }, now))
            .state,
        );
      }
      assert.deepEqual(states, ["recorded", "recorded", "claimed", "claimed"]);
      // A record larger than the whole budget is not kept.
      await b.settleCall(id, "q1", "B", new Uint8Array(3000), now);
      assert.equal(
        (await a.claimCall(id, "q1", { fingerprint: SAME_CALL, node: "A", until: now + 5_000 }, now)).state,
        "claimed",
      );
      assert.equal(
        (await a.claimCall(id, "q4", { fingerprint: SAME_CALL, node: "A", until: now + 5_000 }, now)).state,
        "recorded",
      );
    });

    it("a refused mutation changes nothing, and a session created again under an id starts anew", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.create(id, {}, Date.now(), ALICE);
      await write(a, id, "x", 1);
      await assert.rejects(
        a.mutateVariable(
          id,
          "x",
          () => {
            throw new BridgeError(ErrorType.ValidationError, "refused");
          },
          Date.now(),
        ),
        fails(ErrorType.ValidationError),
      );
      assert.equal((await b.getVariable(id, "x", Date.now()))?.version, 1n);
      await b.delete(id, "cleanup");
      await assert.rejects(write(a, id, "x", 2), fails(ErrorType.SessionNotFound));
      await b.create(id, {}, Date.now(), ALICE);
      await write(b, id, "x", "new", { writer: "python" });
      // A's last view of x belongs to the ended session: its write must build on the new one.
      const written = await write(a, id, "x", "newer");
      assert.equal(versionOf(written), 2n);
      assert.equal(
        written.result.kind === "set" ? written.result.variable.metadata?.createdBy : "",
        "python",
      );
      assert.equal((await a.listVariables(id, {}, Date.now())).sequence, 2n);
    });

    it("claims a call's request id for one node, records its outcome for every node, within the bounds", async () => {
      const { a, b } = await backend.open({ callRecords: { windowMs: 10_000, maxRecords: 2 } });
      const id = `calls-${backend.name.split(" ")[0]}`;
      const now = Date.now();
      await a.create(id, {}, now, ALICE);
      const outcome = new Uint8Array([8, 1, 0, 255]);
      const claim = (store: SessionStore, request: string, node: string, extra = {}, at = now) =>
        store.claimCall(id, request, { fingerprint: SAME_CALL, node, until: at + 5_000, ...extra }, at);

      assert.deepEqual(await claim(a, "r1", "A"), { state: "claimed" });
      assert.deepEqual(await claim(b, "r1", "B"), { state: "running", node: "A", until: now + 5_000 });
      // A node known to be gone loses its claim; its late settle then changes nothing.
      assert.deepEqual(await claim(b, "r1", "B", { takeOverFrom: "A" }), { state: "claimed" });
      await a.settleCall(id, "r1", "A", new Uint8Array([1]), now);
      assert.equal((await claim(a, "r1", "A")).state, "running");
      await b.settleCall(id, "r1", "B", outcome, now);
      const recorded = await claim(a, "r1", "A");
      assert.equal(recorded.state, "recorded");
      assert.deepEqual(recorded.state === "recorded" ? [...recorded.outcome] : [], [...outcome]);

      // Released (nothing recorded), or lapsed: the next claim is the caller's.
      assert.equal((await claim(a, "r2", "A")).state, "claimed");
      await a.settleCall(id, "r2", "A", undefined, now);
      assert.equal((await claim(b, "r2", "B")).state, "claimed");
      assert.equal((await claim(a, "r3", "A", { until: now - 1 })).state, "claimed");
      assert.equal((await claim(b, "r3", "B")).state, "claimed");

      // At most maxRecords per session (the oldest go), and none past the window.
      for (const request of ["q1", "q2", "q3"]) {
        await claim(a, request, "A");
        await a.settleCall(id, request, "A", outcome, now);
      }
      assert.equal((await claim(b, "q1", "B")).state, "claimed");
      assert.equal((await claim(b, "q3", "B")).state, "recorded");
      assert.equal((await claim(b, "q3", "B", {}, now + 10_001)).state, "claimed");

      await a.delete(id, "cleanup");
      await assert.rejects(claim(b, "r1", "B"), fails(ErrorType.SessionNotFound));
      await b.create(id, {}, now, ALICE);
      assert.equal((await claim(b, "r1", "B")).state, "claimed");
    });

    it("a request id answers only the call of its fingerprint: another is refused while it runs and once recorded", async () => {
      const { a, b } = await backend.open({ callRecords: { windowMs: 10_000, maxRecords: 10 } });
      const id = `fingerprints-${backend.name.split(" ")[0]}`;
      const now = Date.now();
      await a.create(id, {}, now, ALICE);
      const outcome = new Uint8Array([8, 1, 0, 255]);
      const claim = (
        store: SessionStore,
        node: string,
        request: string,
        fingerprint: string,
        extra = {},
        at = now,
      ) => store.claimCall(id, request, { fingerprint, node, until: at + 5_000, ...extra }, at);

      assert.equal((await claim(a, "A", "f1", SAME_CALL)).state, "claimed");
      assert.deepEqual(await claim(b, "B", "f1", OTHER_CALL), { state: "reused" });
      assert.equal((await claim(b, "B", "f1", SAME_CALL)).state, "running");
      // The record keeps the fingerprint of the claim it settles.
      await a.settleCall(id, "f1", "A", outcome, now);
      assert.deepEqual(await claim(b, "B", "f1", OTHER_CALL), { state: "reused" });
      assert.equal((await claim(b, "B", "f1", SAME_CALL)).state, "recorded");
      // Past the window the id is free for any call.
      assert.equal((await claim(b, "B", "f1", OTHER_CALL, {}, now + 10_001)).state, "claimed");

      // A claim that lapsed or was released never recorded anything: the id is free too.
      assert.equal((await claim(a, "A", "f2", SAME_CALL, { until: now - 1 })).state, "claimed");
      assert.equal((await claim(b, "B", "f2", OTHER_CALL)).state, "claimed");
      assert.deepEqual(await claim(a, "A", "f2", SAME_CALL), { state: "reused" });
      await b.settleCall(id, "f2", "B", undefined, now);
      assert.equal((await claim(a, "A", "f2", SAME_CALL)).state, "claimed");
    });

    it("every variable operation on an unknown session fails with SessionNotFound", async () => {
      const { a } = await backend.open();
      const now = Date.now();
      await assert.rejects(a.getVariable("gone", "x", now), fails(ErrorType.SessionNotFound));
      await assert.rejects(a.listVariables("gone", {}, now), fails(ErrorType.SessionNotFound));
      await assert.rejects(a.countVariables("gone", now), fails(ErrorType.SessionNotFound));
      await assert.rejects(write(a, "gone", "x", 1), fails(ErrorType.SessionNotFound));
      await assert.rejects(a.changesSince("gone", 0n, now), fails(ErrorType.SessionNotFound));
    });
  });
}

describe("the Redis store's connection", () => {
  it("answers the first use of each script sent in one tick beside other commands (one auto-pipeline)", async () => {
    if (redis === undefined) throw new Error("redis-server is not running");
    const store = new RedisSessionStore({ ...DEFAULTS, url: redis.url, keyPrefix: `contract${++prefixes}:` });
    opened.push(store);
    await store.count();
    const id = newId();
    const now = Date.now();
    // The plain command opens the tick's pipeline; each script joins it on its first use.
    const outcomes = await Promise.allSettled([
      store.get(id, now),
      store.getVariable(id, "x", now),
      store.claimCall(id, "r1", { fingerprint: SAME_CALL, node: "A", until: now + 5_000 }, now),
      store.takeRateSlot(`rated-${id}`, 5),
      store.withdrawSessionTool(id, "lookup"),
    ]);
    assert.deepEqual(
      outcomes.map((o) => (o.status === "fulfilled" ? "answered" : (o.reason as { type?: string }).type)),
      ["answered", ErrorType.SessionNotFound, ErrorType.SessionNotFound, "answered", "answered"],
    );
  });
});
