// The session store contract, part by part, run against both stores (test/support/store-nodes.ts):
// the sessions (SessionTable) and the call records of replay (CallRecordStore) on the memory
// store and on the Redis store, and the parts only a store several nodes share has (RateSlots,
// NodeDirectory, SessionToolDirectory) on the Redis store. The variables part has its own file
// (store-contract-variables.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorType, type SessionEnded, type SessionStore } from "@toolbridge/server";
import { fails } from "./support/assertions.js";
import { ALICE, newId, OTHER_CALL, SAME_CALL, storeBackends } from "./support/store-nodes.js";
import { waitUntil } from "./support/wait.js";

const { backends, shared } = storeBackends();

for (const backend of backends) {
  describe(`sessions (SessionTable): ${backend.name}`, () => {
    it("creates, attaches, refreshes and deletes a session; every node hears of the end", async () => {
      const { a, b } = await backend.open();
      const endedA: SessionEnded[] = [];
      const endedB: SessionEnded[] = [];
      a.sessions.onSessionEnded((event) => endedA.push(event));
      if (b !== a) b.sessions.onSessionEnded((event) => endedB.push(event));
      const id = newId();
      const now = Date.now();
      const created = await a.sessions.create(id, { owner: "ts" }, now, ALICE);
      assert.equal(created.created, true);
      assert.deepEqual(
        [created.record.id, created.record.metadata, created.record.createdAt],
        [id, { owner: "ts" }, now],
      );
      const attached = await b.sessions.create(id, { ignored: "yes" }, now + 5, ALICE);
      assert.equal(attached.created, false);
      assert.deepEqual(attached.record.metadata, { owner: "ts" });
      assert.equal((await b.sessions.touch(id, now + 10))?.lastAccessedAt, now + 10);
      assert.equal((await a.sessions.get(id, now + 10))?.createdAt, now);
      assert.equal(await a.sessions.get("no-such-session", now), undefined);
      assert.equal(await a.sessions.touch("no-such-session", now), undefined);
      assert.equal(await b.sessions.delete(id, "cleanup"), true);
      assert.equal(await a.sessions.delete(id, "cleanup"), false);
      assert.equal(await a.sessions.get(id, Date.now()), undefined);
      assert.equal(await a.sessions.touch(id, Date.now()), undefined);
      assert.deepEqual(
        endedA
          .concat(endedB)
          .filter((e) => e.id === id)
          .slice(0, 1),
        [{ id, reason: "cleanup" }],
      );
      if (b !== a) await waitUntil(() => endedA.some((e) => e.id === id), "node A hears of the cleanup on B");
    });

    it("enforces the session limit across nodes; attaching and freed slots are fine", async () => {
      const { a, b } = await backend.open({ maxSessions: 2 });
      const [first, second, third] = [newId(), newId(), newId()];
      await a.sessions.create(first, {}, Date.now(), ALICE);
      await b.sessions.create(second, {}, Date.now(), ALICE);
      await assert.rejects(
        a.sessions.create(third, {}, Date.now(), ALICE),
        fails(ErrorType.SessionLimitExceeded, (e) => e.details.limit === "2"),
      );
      await assert.rejects(
        b.sessions.create(third, {}, Date.now(), ALICE),
        fails(ErrorType.SessionLimitExceeded),
      );
      assert.equal((await b.sessions.create(first, {}, Date.now(), ALICE)).created, false);
      assert.equal(await a.sessions.count(), 2);
      await b.sessions.delete(first, "cleanup");
      assert.equal((await a.sessions.create(third, {}, Date.now(), ALICE)).created, true);
      assert.equal(await b.sessions.count(), 2);
    });

    it("records the owner on every node; another owner can neither join nor end the session", async () => {
      const { a, b } = await backend.open();
      const id = newId();
      await a.sessions.create(id, {}, Date.now(), ALICE);
      assert.equal((await b.sessions.get(id, Date.now()))?.owner, "alice");
      assert.equal((await b.sessions.touch(id, Date.now()))?.owner, "alice");
      await assert.rejects(
        b.sessions.create(id, {}, Date.now(), { owner: "bob" }),
        fails(ErrorType.SessionNotFound, (e) => !/alice/.test(e.message)),
      );
      // The host itself may attach to any session; it does not become the owner.
      const attached = await b.sessions.create(id, {}, Date.now(), { owner: "@host", anyOwner: true });
      assert.deepEqual([attached.created, attached.record.owner], [false, "alice"]);
      assert.equal(await b.sessions.delete(id, "cleanup", "bob"), false);
      assert.equal((await a.sessions.get(id, Date.now()))?.owner, "alice", "bob's cleanup left it alone");
      assert.equal(await b.sessions.delete(id, "cleanup", "alice"), true);
    });

    it("counts an owner's sessions across nodes; a refused attach counts for nobody", async () => {
      const { a, b } = await backend.open();
      const perOwner = (owner: string) => ({ owner, maxPerOwner: 2 });
      const [first, second, third] = [newId(), newId(), newId()];
      await a.sessions.create(first, {}, Date.now(), perOwner("alice"));
      await b.sessions.create(second, {}, Date.now(), perOwner("alice"));
      for (const node of [a, b]) {
        await assert.rejects(
          node.sessions.create(third, {}, Date.now(), perOwner("alice")),
          fails(ErrorType.SessionLimitExceeded, (e) => e.details.quota === "maxSessionsPerPrincipal"),
        );
      }
      assert.equal((await a.sessions.create(first, {}, Date.now(), perOwner("alice"))).created, false);
      await assert.rejects(
        b.sessions.create(first, {}, Date.now(), perOwner("bob")),
        fails(ErrorType.SessionNotFound),
      );
      await b.sessions.create(newId(), {}, Date.now(), perOwner("bob"));
      await a.sessions.create(newId(), {}, Date.now(), perOwner("bob"));
      await b.sessions.delete(second, "cleanup");
      assert.equal((await a.sessions.create(third, {}, Date.now(), perOwner("alice"))).created, true);
    });

    it("expires an idle session (sliding TTL), tells every node, and keeps a used one alive", async () => {
      const { a, b } = await backend.open({ timeoutMs: 300 });
      const ended: SessionEnded[] = [];
      a.sessions.onSessionEnded((event) => ended.push(event));
      const [idle, used] = [newId(), newId()];
      await a.sessions.create(idle, {}, Date.now(), ALICE);
      await a.sessions.create(used, {}, Date.now(), ALICE);
      const started = Date.now();
      // Used every 50 ms through either node for three timeouts: it must stay.
      for (let i = 0; Date.now() - started < 900; i++) {
        assert.notEqual(
          await (i % 2 === 0 ? a : b).sessions.touch(used, Date.now()),
          undefined,
          `touch ${i}`,
        );
        await b.sessions.sweep(Date.now());
        await sleep(50);
      }
      await waitUntil(async () => {
        await b.sessions.sweep(Date.now());
        return ended.some((e) => e.id === idle);
      }, "the idle session expires");
      assert.deepEqual(
        ended.filter((e) => e.id === idle),
        [{ id: idle, reason: "expired" }],
      );
      assert.equal(await a.sessions.get(idle, Date.now()), undefined);
      await assert.rejects(a.variables.get(idle, "x", Date.now()), fails(ErrorType.SessionNotFound));
      assert.notEqual(await a.sessions.get(used, Date.now()), undefined);
      assert.equal(await b.sessions.count(), 1);
    });
  });

  describe(`call records (CallRecordStore): ${backend.name}`, () => {
    it("keeps call records within their bytes per session, dropping the oldest first", async () => {
      const { a, b } = await backend.open({
        callRecords: { windowMs: 60_000, maxRecords: 100, maxBytes: 2500 },
      });
      const id = newId();
      const now = Date.now();
      await a.sessions.create(id, {}, now, ALICE);
      // Each record counts its 1000-byte outcome and its id (and a little more): two fit, three do not.
      const outcome = new Uint8Array(1000).fill(7);
      for (const request of ["q1", "q2", "q3", "q4"]) {
        assert.equal(
          (
            await a.callRecords.claim(
              id,
              request,
              { fingerprint: SAME_CALL, node: "A", until: now + 5_000 },
              now,
            )
          ).state,
          "claimed",
        );
        await a.callRecords.settle(id, request, "A", outcome, now);
      }
      const states = [];
      for (const request of ["q4", "q3", "q2", "q1"]) {
        states.push(
          (
            await b.callRecords.claim(
              id,
              request,
              { fingerprint: SAME_CALL, node: "B", until: now + 5_000 },
              now,
            )
          ).state,
        );
      }
      assert.deepEqual(states, ["recorded", "recorded", "claimed", "claimed"]);
      // A record larger than the whole budget is not kept.
      await b.callRecords.settle(id, "q1", "B", new Uint8Array(3000), now);
      assert.equal(
        (await a.callRecords.claim(id, "q1", { fingerprint: SAME_CALL, node: "A", until: now + 5_000 }, now))
          .state,
        "claimed",
      );
      assert.equal(
        (await a.callRecords.claim(id, "q4", { fingerprint: SAME_CALL, node: "A", until: now + 5_000 }, now))
          .state,
        "recorded",
      );
    });

    it("claims a call's request id for one node, records its outcome for every node, within the bounds", async () => {
      const { a, b } = await backend.open({ callRecords: { windowMs: 10_000, maxRecords: 2 } });
      const id = `calls-${backend.name.split(" ")[0]}`;
      const now = Date.now();
      await a.sessions.create(id, {}, now, ALICE);
      const outcome = new Uint8Array([8, 1, 0, 255]);
      const claim = (store: SessionStore, request: string, node: string, extra = {}, at = now) =>
        store.callRecords.claim(
          id,
          request,
          { fingerprint: SAME_CALL, node, until: at + 5_000, ...extra },
          at,
        );

      assert.deepEqual(await claim(a, "r1", "A"), { state: "claimed" });
      assert.deepEqual(await claim(b, "r1", "B"), { state: "running", node: "A", until: now + 5_000 });
      // A node known to be gone loses its claim; its late settle then changes nothing.
      assert.deepEqual(await claim(b, "r1", "B", { takeOverFrom: "A" }), { state: "claimed" });
      await a.callRecords.settle(id, "r1", "A", new Uint8Array([1]), now);
      assert.equal((await claim(a, "r1", "A")).state, "running");
      await b.callRecords.settle(id, "r1", "B", outcome, now);
      const recorded = await claim(a, "r1", "A");
      assert.equal(recorded.state, "recorded");
      assert.deepEqual(recorded.state === "recorded" ? [...recorded.outcome] : [], [...outcome]);

      // Released (nothing recorded), or lapsed: the next claim is the caller's.
      assert.equal((await claim(a, "r2", "A")).state, "claimed");
      await a.callRecords.settle(id, "r2", "A", undefined, now);
      assert.equal((await claim(b, "r2", "B")).state, "claimed");
      assert.equal((await claim(a, "r3", "A", { until: now - 1 })).state, "claimed");
      assert.equal((await claim(b, "r3", "B")).state, "claimed");

      // At most maxRecords per session (the oldest go), and none past the window.
      for (const request of ["q1", "q2", "q3"]) {
        await claim(a, request, "A");
        await a.callRecords.settle(id, request, "A", outcome, now);
      }
      assert.equal((await claim(b, "q1", "B")).state, "claimed");
      assert.equal((await claim(b, "q3", "B")).state, "recorded");
      assert.equal((await claim(b, "q3", "B", {}, now + 10_001)).state, "claimed");

      await a.sessions.delete(id, "cleanup");
      await assert.rejects(claim(b, "r1", "B"), fails(ErrorType.SessionNotFound));
      await b.sessions.create(id, {}, now, ALICE);
      assert.equal((await claim(b, "r1", "B")).state, "claimed");
    });

    it("a request id answers only the call of its fingerprint: another is refused while it runs and once recorded", async () => {
      const { a, b } = await backend.open({ callRecords: { windowMs: 10_000, maxRecords: 10 } });
      const id = `fingerprints-${backend.name.split(" ")[0]}`;
      const now = Date.now();
      await a.sessions.create(id, {}, now, ALICE);
      const outcome = new Uint8Array([8, 1, 0, 255]);
      const claim = (
        store: SessionStore,
        node: string,
        request: string,
        fingerprint: string,
        extra = {},
        at = now,
      ) => store.callRecords.claim(id, request, { fingerprint, node, until: at + 5_000, ...extra }, at);

      assert.equal((await claim(a, "A", "f1", SAME_CALL)).state, "claimed");
      assert.deepEqual(await claim(b, "B", "f1", OTHER_CALL), { state: "reused" });
      assert.equal((await claim(b, "B", "f1", SAME_CALL)).state, "running");
      // The record keeps the fingerprint of the claim it settles.
      await a.callRecords.settle(id, "f1", "A", outcome, now);
      assert.deepEqual(await claim(b, "B", "f1", OTHER_CALL), { state: "reused" });
      assert.equal((await claim(b, "B", "f1", SAME_CALL)).state, "recorded");
      // Past the window the id is free for any call.
      assert.equal((await claim(b, "B", "f1", OTHER_CALL, {}, now + 10_001)).state, "claimed");

      // A claim that lapsed or was released never recorded anything: the id is free too.
      assert.equal((await claim(a, "A", "f2", SAME_CALL, { until: now - 1 })).state, "claimed");
      assert.equal((await claim(b, "B", "f2", OTHER_CALL)).state, "claimed");
      assert.deepEqual(await claim(a, "A", "f2", SAME_CALL), { state: "reused" });
      await b.callRecords.settle(id, "f2", "B", undefined, now);
      assert.equal((await claim(a, "A", "f2", SAME_CALL)).state, "claimed");
    });
  });
}

describe("the parts only a shared store has: the memory store has none", () => {
  it("has no rate slots, node or tool directory: rate limits, tools and calls stay with its host", async () => {
    const { a } = await (backends[0] as (typeof backends)[0]).open();
    assert.deepEqual([a.rateSlots, a.nodes, a.sessionTools], [undefined, undefined, undefined]);
  });
});

for (const { name, open: openRedis } of shared) {
  describe(`the parts only a shared store has (RateSlots, NodeDirectory, SessionToolDirectory): ${name}`, () => {
    it("counts a global tool's starts for every node together, each tool in its own window", async () => {
      const { a, b } = await openRedis();
      const tool = `rated-${newId()}`;
      for (const node of [a, b, a]) assert.equal(await node.rateSlots.take(tool, 3), 0);
      const wait = await b.rateSlots.take(tool, 3);
      assert.ok(wait > 0 && wait <= 60_000, `the fourth start waits ${wait} ms`);
      assert.ok((await a.rateSlots.take(tool, 3)) > 0, "refused on the other node too");
      assert.equal(await a.rateSlots.take(`${tool}-other`, 3), 0);
    });

    it("lists a node in the directory until it withdraws, and gives every node the same peer token", async () => {
      const { a, b } = await openRedis();
      assert.notEqual(a.nodes.nodeId, b.nodes.nodeId);
      assert.equal(await b.nodes.entry(a.nodes.nodeId), undefined);
      await a.nodes.advertise({ address: "127.0.0.1:50051", tls: true });
      assert.deepEqual(await b.nodes.entry(a.nodes.nodeId), { address: "127.0.0.1:50051", tls: true });
      await a.nodes.withdraw();
      assert.equal(await b.nodes.entry(a.nodes.nodeId), undefined);
      const [first, second] = await Promise.all([a.nodes.peerToken(), b.nodes.peerToken()]);
      assert.equal(first, second);
      assert.ok(first.length >= 32, "a random token");
    });

    it("lists a session's tools with the node serving each; only that node withdraws one, and they end with the session", async () => {
      const { a, b } = await openRedis();
      const id = newId();
      await assert.rejects(
        a.sessionTools.publish(id, "lookup", new Uint8Array([1])),
        fails(ErrorType.SessionNotFound),
      );
      await a.sessions.create(id, {}, Date.now(), ALICE);
      // A spec may hold the byte of the separator ('|', 124): only the first one separates the node.
      await a.sessionTools.publish(id, "lookup", new Uint8Array([1, 124, 2]));
      await b.sessionTools.publish(id, "other", new Uint8Array([9]));
      const listed = [...(await b.sessionTools.list(id))].map(([name, { node, spec }]) => [
        name,
        node,
        [...spec],
      ]);
      assert.deepEqual(listed.sort(), [
        ["lookup", a.nodes.nodeId, [1, 124, 2]],
        ["other", b.nodes.nodeId, [9]],
      ]);
      await b.sessionTools.withdraw(id, "lookup");
      assert.ok((await a.sessionTools.list(id)).has("lookup"), "another node's withdraw leaves it listed");
      await a.sessionTools.withdraw(id, "lookup");
      assert.deepEqual([...(await a.sessionTools.list(id)).keys()], ["other"]);
      await b.sessions.delete(id, "cleanup");
      assert.equal((await a.sessionTools.list(id)).size, 0);
    });
  });

  describe(`the Redis store's connection: ${name}`, () => {
    it("answers the first use of each script sent in one tick beside other commands (one auto-pipeline)", async () => {
      const { a } = await openRedis();
      await a.sessions.count();
      const id = newId();
      const now = Date.now();
      // The plain command opens the tick's pipeline; each script joins it on its first use.
      const outcomes = await Promise.allSettled([
        a.sessions.get(id, now),
        a.variables.get(id, "x", now),
        a.callRecords.claim(id, "r1", { fingerprint: SAME_CALL, node: "A", until: now + 5_000 }, now),
        a.rateSlots.take(`rated-${id}`, 5),
        a.sessionTools.withdraw(id, "lookup"),
      ]);
      assert.deepEqual(
        outcomes.map((o) => (o.status === "fulfilled" ? "answered" : (o.reason as { type?: string }).type)),
        ["answered", ErrorType.SessionNotFound, ErrorType.SessionNotFound, "answered", "answered"],
      );
    });
  });
}
