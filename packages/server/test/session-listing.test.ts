// Listing sessions (ListSessions' store part) on both stores: the memory store and the Redis
// store on a real redis-server and on a real Redis Cluster of three masters, with two store
// objects on one Redis as two nodes; and the node directory the inspector's health page reads,
// on both Redis set-ups.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InMemorySessionStore, RedisSessionStore, type SessionTable } from "@toolbridge/server";
import { type RedisCluster, startRedisCluster } from "./support/redis-cluster.js";
import { type RedisServer, startRedis } from "./support/redis-server.js";

const OPTIONS = { timeoutMs: 60_000, maxSessions: 100 };
let redis: RedisServer | undefined;
let cluster: RedisCluster | undefined;
const opened: RedisSessionStore[] = [];

before(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
});

after(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

/** The two Redis set-ups, by the URL of each (known once `before` has run). */
const REDIS: { name: string; url(): string }[] = [
  { name: "Redis store", url: () => redis?.url ?? "" },
  { name: "Redis store on a Redis Cluster", url: () => cluster?.url ?? "" },
];

function redisStores(url: string, prefix: string): [RedisSessionStore, RedisSessionStore] {
  const pair = [0, 1].map(() => new RedisSessionStore({ ...OPTIONS, url, keyPrefix: prefix })) as [
    RedisSessionStore,
    RedisSessionStore,
  ];
  opened.push(...pair);
  return pair;
}

/** The session tables of two nodes of one store (the memory store's one node twice). */
const BACKENDS: { name: string; open(prefix: string): [SessionTable, SessionTable] }[] = [
  {
    name: "memory store",
    open: () => {
      const store = new InMemorySessionStore(OPTIONS);
      return [store.sessions, store.sessions];
    },
  },
  ...REDIS.map(({ name, url }) => ({
    name,
    open: (prefix: string): [SessionTable, SessionTable] => {
      const [a, b] = redisStores(url(), prefix);
      return [a.sessions, b.sessions];
    },
  })),
];

for (const backend of BACKENDS) {
  describe(`listing sessions: ${backend.name}`, () => {
    it("lists live sessions in id order, a page at a time, of one owner when asked", async () => {
      const [a, b] = backend.open("listing1:");
      const now = Date.now();
      for (const [id, owner] of [
        ["s3", "alice"],
        ["s1", "alice"],
        ["s2", "bob"],
        ["s5", "alice"],
        ["s4", "bob"],
      ] as const) {
        await (id < "s3" ? a : b).create(id, {}, now, { owner });
      }
      const page = await a.listSessions({ after: "", limit: 2 }, now);
      assert.deepEqual(
        page.sessions.map((s) => s.id),
        ["s1", "s2"],
      );
      assert.equal(page.more, true);
      const rest = await b.listSessions({ after: "s2", limit: 10 }, now);
      assert.deepEqual(
        rest.sessions.map((s) => [s.id, s.owner]),
        [
          ["s3", "alice"],
          ["s4", "bob"],
          ["s5", "alice"],
        ],
      );
      assert.equal(rest.more, false);
      const bobs = await b.listSessions({ after: "", limit: 1, owner: "bob" }, now);
      assert.deepEqual(
        bobs.sessions.map((s) => s.id),
        ["s2"],
      );
      assert.equal(bobs.more, true);
      assert.deepEqual(
        (await a.listSessions({ after: "s2", limit: 5, owner: "bob" }, now)).sessions.length,
        1,
      );
    });

    it("leaves out ended and expired sessions", async () => {
      const [a, b] = backend.open("listing2:");
      const now = Date.now();
      await a.create("gone", {}, now, { owner: "alice" });
      await a.create("kept", {}, now, { owner: "alice" });
      await b.delete("gone", "cleanup");
      assert.deepEqual(
        (await a.listSessions({ after: "", limit: 10 }, now)).sessions.map((s) => s.id),
        ["kept"],
      );
      const later = now + OPTIONS.timeoutMs * 3;
      assert.deepEqual((await b.listSessions({ after: "", limit: 10 }, later)).sessions, []);
    });
  });
}

for (const { name, url } of REDIS) {
  describe(`the node directory: ${name}`, () => {
    it("lists every advertised node, and forgets one that withdrew", async () => {
      const [a, b] = redisStores(url(), "directory:").map((store) => store.nodes);
      assert(a !== undefined && b !== undefined);
      await a.advertise({ address: "10.0.0.1:50051", tls: false });
      await b.advertise({ address: "10.0.0.2:50051", tls: true });
      const nodes = await a.nodes();
      assert.deepEqual(nodes.get(a.nodeId), { address: "10.0.0.1:50051", tls: false });
      assert.deepEqual(nodes.get(b.nodeId), { address: "10.0.0.2:50051", tls: true });
      assert.equal(nodes.size, 2);
      await b.withdraw();
      assert.deepEqual([...(await a.nodes()).keys()], [a.nodeId]);
      await a.withdraw();
    });
  });
}
