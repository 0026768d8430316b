// What a client can make the host or Redis keep beyond its variables stays within the
// documented quotas: the watch history counts in maxSessionVariableBytes (and, on the memory
// store, with call records, deleted names and session metadata in maxTotalVariableBytes),
// under repeated large overwrites through the real host; the host's memory stays bounded;
// Redis keeps a session's log within its bytes; call records go oldest first beyond
// replayMaxSessionBytes; a watch resumed after trimming gets the documented error or
// every change it missed; and the updates all of a host's watches hold stay within
// maxTotalWatchBufferBytes.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { ErrorType, type ToolBridgeClient, type VariableUpdate } from "@toolbridge/client";
import { encodeVariableValue } from "@toolbridge/core";
import {
  type BridgeError,
  InMemorySessionStore,
  type SessionStore,
  ToolBridgeHost,
} from "@toolbridge/server";
import { Redis } from "ioredis";
import { pino } from "pino";
import { SessionFeed } from "../src/sessions/redis/session-feed.js";
import type { VariableChange } from "../src/sessions/variable-store.js";
import { applySet } from "../src/variables/semantics.js";
import { fails } from "./support/assertions.js";
import type { HostProcess } from "./support/host-process.js";
import { nodesOnRedis } from "./support/nodes.js";

const MiB = 1024 * 1024;
/** A value of 900 KiB, different for every `i` (so nothing can share it). */
const large = (i: number) => `${i}:`.padEnd(900 * 1024, String.fromCharCode(97 + (i % 26)));

const { url, host, client } = nodesOnRedis();

/** Resident memory of a process, in bytes (Linux). */
function rss(pid: number): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  assert.ok(kib, "no VmRSS");
  return Number(kib) * 1024;
}

/** The toolbridge_store_bytes gauge, by kind. */
async function storeBytes(target: HostProcess): Promise<Record<string, number>> {
  const text = await (await fetch(target.metricsUrl as string)).text();
  const kinds: Record<string, number> = {};
  for (const [, kind = "", bytes] of text.matchAll(/^toolbridge_store_bytes\{kind="(\w+)"\} (\d+)$/gm)) {
    kinds[kind] = Number(bytes);
  }
  return kinds;
}

async function take(watcher: AsyncIterable<VariableUpdate>, count: number): Promise<VariableUpdate[]> {
  const out: VariableUpdate[] = [];
  for await (const update of watcher) {
    out.push(update);
    if (out.length >= count) break;
  }
  return out;
}

/** Resumes a watch after `sequence` and expects `count` complete changes of x, or the error. */
async function resume(session: ToolBridgeClient, after: number, count: number): Promise<VariableUpdate[]> {
  const watcher = session.watchVariables([], { resumeAfterSequence: after });
  try {
    await watcher.ready();
    return await take(watcher, count);
  } finally {
    watcher.close();
  }
}

const trimmed = fails(ErrorType.ResourceExhausted, (e) => e.details.reason === "history_trimmed");

describe("the memory store under repeated 900 KiB overwrites with watch history on", () => {
  const sessionQuota = 8 * MiB;
  const total = 24 * MiB;
  let h: HostProcess;
  before(async () => {
    h = await host({
      "max-session-variable-bytes": sessionQuota,
      "max-total-variable-bytes": total,
      "metrics-port": 0,
    });
  });

  it("keeps the store within its quotas, the host's memory bounded, and resumes what it kept", async () => {
    const sessions = await Promise.all(
      [0, 1, 2, 3, 4].map(async () => {
        const session = client(h.target);
        await session.initializeSession();
        await session.setVariable("x", "warm");
        return session;
      }),
    );
    const before = rss(h.process.pid as number);
    // 5 sessions x 80 x 900 KiB: kept in full, that would be 350 MiB of history.
    await Promise.all(
      sessions.map(async (session, s) => {
        for (let i = 0; i < 80; i++) await session.setVariable("x", large(s * 100 + i));
      }),
    );
    const first = sessions[0] as ToolBridgeClient;
    await first.setVariable("x", large(1000));
    await first.setVariable("x", large(1001));
    const grown = rss(h.process.pid as number) - before;
    const kept = await storeBytes(h);
    const sum = Object.values(kept).reduce((a, b) => a + b, 0);
    assert.ok(sum <= total, `the store keeps ${sum} bytes, over maxTotalVariableBytes ${total}`);
    assert.ok((kept.history ?? 0) > 900 * 1024, `some history is kept: ${JSON.stringify(kept)}`);
    // The quota bounds what is kept; the garbage of 400 writes of 900 KiB comes on top of it.
    const allowance = 192 * MiB;
    assert.ok(grown <= total + allowance, `the host grew by ${grown} bytes, over ${total} + ${allowance}`);

    // Session 0 is at sequence 83 (warm, 80, 2): its oldest changes are gone, its latest are complete.
    await assert.rejects(resume(first, 1, 1), trimmed);
    const latest = await resume(first, 81, 2);
    assert.deepEqual(
      latest.map((u) => [u.kind, "sequence" in u ? u.sequence : 0]),
      [
        ["set", 82],
        ["set", 83],
      ],
    );
    assert.deepEqual(
      latest.map((u) => (u.kind === "set" ? u.variable.value : undefined)),
      [large(1000), large(1001)],
    );
  });
});

describe("the Redis store under repeated 900 KiB overwrites", () => {
  const sessionQuota = 4 * MiB;
  let h: HostProcess;
  let redis: Redis;
  before(async () => {
    h = await host({ store: url(), "max-session-variable-bytes": sessionQuota });
    redis = new Redis(url());
  });
  after(() => {
    redis.disconnect();
  });

  it("keeps the session's log within what its variables leave of the quota, and resumes what it kept", async () => {
    const session = client(h.target);
    const { sessionId } = await session.initializeSession();
    for (let i = 0; i < 30; i++) await session.setVariable("x", large(i));
    const key = `toolbridge:{${sessionId}}`;
    const [variables, logBytes] = (await redis.hmget(key, "bytes", "lb")).map(Number) as [number, number];
    const entries = await redis.xlen(`${key}:log`);
    assert.equal(await redis.llen(`${key}:logz`), entries);
    assert.ok(entries >= 2 && entries < 5, `${entries} entries of 900 KiB in the log`);
    assert.ok(
      variables + logBytes <= sessionQuota,
      `variables ${variables} + log ${logBytes} > ${sessionQuota}`,
    );
    // Kept in full, 30 entries would take 27 MB; Redis's own overhead is small beside 900 KiB values.
    const memory = Number(await redis.call("MEMORY", "USAGE", `${key}:log`, "SAMPLES", "0"));
    assert.ok(memory <= sessionQuota - variables + MiB, `the log takes ${memory} bytes of Redis memory`);

    await assert.rejects(resume(session, 1, 1), trimmed);
    const missed = await resume(session, 30 - 2, 2);
    assert.deepEqual(
      missed.map((u) => (u.kind === "set" ? [u.sequence, u.variable.value] : [])),
      [
        [29, large(28)],
        [30, large(29)],
      ],
    );
  });
});

for (const store of ["memory", "redis"] as const) {
  describe(`call records on the ${store} store`, () => {
    let session: ToolBridgeClient;
    before(async () => {
      // 256 bytes: room for two records of `bump` (its outcome, request id and a little more).
      const h = await host({
        ...(store === "redis" ? { store: url() } : {}),
        "replay-max-session-bytes": 256,
      });
      session = client(h.target);
      await session.initializeSession();
    });

    it("go oldest first beyond replayMaxSessionBytes: the oldest request id runs again, the newest replays", async () => {
      const key = randomUUID();
      const ids = [1, 2, 3, 4].map((i) => `${key}-${i}`);
      for (const requestId of ids) await session.executeTool("bump", { key }, { requestId });
      const newest = (await session.executeTool("bump", { key }, { requestId: ids[3] })) as { count: number };
      assert.equal(newest.count, 4, "the newest record replays");
      const oldest = (await session.executeTool("bump", { key }, { requestId: ids[0] })) as { count: number };
      assert.equal(oldest.count, 5, "the oldest record was dropped: the call ran again");
      assert.equal(await session.executeTool("bumps", { key }), 5);
    });
  });
}

describe("a Redis node's feed waiting behind a gap", () => {
  const change = (sequence: number): VariableChange => ({
    sessionId: "s",
    name: "x",
    sequence: BigInt(sequence),
    result: { kind: "deleted", version: BigInt(sequence) },
  });
  const feed = (limits: { changes: number; bytes: number }) => {
    const delivered: bigint[] = [];
    const lost: BridgeError[] = [];
    const source = {
      // The log has nothing before the gap: a fill would find it trimmed.
      readAfter: async () => [],
      deliver: (c: VariableChange) => delivered.push(c.sequence),
      lost: (_: string, error: BridgeError) => lost.push(error),
    };
    const made = new SessionFeed("s", source, () => {}, limits);
    made.start(0n);
    made.follower();
    return { made, delivered, lost };
  };

  it("delivers in order once the gap fills, and holds no more than the log keeps", async () => {
    const filled = feed({ changes: 5, bytes: 1000 });
    for (const sequence of [2, 3, 4, 5]) filled.made.offer(change(sequence));
    filled.made.offer(change(1));
    assert.deepEqual(filled.delivered, [1n, 2n, 3n, 4n, 5n]);
    assert.deepEqual(filled.lost, []);

    // Six changes behind the gap, the log keeping five: the missing one is gone from it.
    const behind = feed({ changes: 5, bytes: 1000 });
    for (const sequence of [2, 3, 4, 5, 6, 7]) behind.made.offer(change(sequence));
    assert.deepEqual(behind.delivered, []);
    assert.equal(behind.lost.length, 1);
    assert.equal(behind.lost[0]?.details.reason, "history_trimmed");
    assert.equal(behind.made.wants(8n), false, "the feed is closed: it holds nothing more");

    // Likewise by bytes: a deleted change counts its name and 16, so three of x pass 50.
    const heavy = feed({ changes: 100, bytes: 50 });
    for (const sequence of [2, 3, 4]) heavy.made.offer(change(sequence));
    assert.equal(heavy.lost[0]?.details.reason, "history_trimmed");
    behind.made.close();
    filled.made.close();
    heavy.made.close();
  });
});

describe("the memory store's total (maxTotalVariableBytes)", () => {
  const write = (store: SessionStore, sessionId: string, name: string, value: string) =>
    store.variables.mutate(
      sessionId,
      name,
      (slot) =>
        applySet(slot, {
          sessionId,
          name,
          value: encodeVariableValue(name, value),
          declaration: undefined,
          writer: "typescript",
          writerLabel: "typescript",
          tags: {},
          createIfMissing: true,
          expectedVersion: undefined,
          now: Date.now(),
          maxVariables: 100,
          // Only the total refuses here; the store's own 15,000 bounds each session's history.
          quotas: { maxStoreBytes: 20_000 },
        }),
      Date.now(),
    );
  const sum = (store: InMemorySessionStore) =>
    Object.values(store.usage()).reduce((total, bytes) => total + bytes, 0);

  it("counts metadata, variables, history and records, and drops the oldest history and records of any session first", async () => {
    const store = new InMemorySessionStore({
      timeoutMs: 60_000,
      maxSessions: 10,
      watchHistory: 100,
      maxSessionBytes: 15_000,
      maxTotalBytes: 20_000,
    });
    const now = Date.now();
    const owner = { owner: "alice" };
    await store.sessions.create("s1", { note: "n".repeat(996) }, now, owner);
    await store.sessions.create("s2", {}, now, owner);
    for (let i = 0; i < 4; i++) await write(store, "s1", "x", `${i}`.repeat(3000));
    assert.equal(store.usage().sessions, 1000 + 4);
    assert.ok(store.usage().history > 9000, JSON.stringify(store.usage()));
    assert.ok(sum(store) <= 20_000);

    // s2's write needs room that only s1's oldest changes can give.
    await write(store, "s2", "y", "y".repeat(5000));
    assert.ok(sum(store) <= 20_000, JSON.stringify(store.usage()));
    await assert.rejects(store.variables.changesSince("s1", 1n, now), trimmed);
    assert.equal((await store.variables.changesSince("s2", 0n, now)).changes.length, 1);
    await store.callRecords.claim("s2", "r1", { fingerprint: "a1", node: "A", until: now + 5000 }, now);
    await store.callRecords.settle("s2", "r1", "A", new Uint8Array(2000), now);
    assert.ok(store.usage().records > 2000);
    assert.ok(sum(store) <= 20_000, JSON.stringify(store.usage()));

    // Variables and metadata are refused beyond the total; nothing is dropped for them.
    await assert.rejects(
      store.sessions.create("s3", { note: "n".repeat(12_000) }, now, owner),
      fails(ErrorType.ResourceExhausted, (e) => e.details.quota === "maxTotalVariableBytes"),
    );
    await assert.rejects(
      write(store, "s2", "z", "z".repeat(12_000)),
      fails(ErrorType.ResourceExhausted, (e) => e.details.quota === "maxTotalVariableBytes"),
    );
    await store.sessions.delete("s1", "cleanup");
    await store.sessions.delete("s2", "cleanup");
    assert.deepEqual(store.usage(), { sessions: 0, variables: 0, history: 0, records: 0, deleted: 0 });
  });
});

describe("the updates all of a host's watches hold (maxTotalWatchBufferBytes)", () => {
  let host: ToolBridgeHost | undefined;
  after(async () => {
    await host?.stop({ graceMs: 0 });
  });

  it("end the watch holding the most once past the total; a reader that keeps up is not touched", async () => {
    const made = new ToolBridgeHost({
      logger: pino({ level: "silent" }),
      watchBufferBytes: 64 * 1024,
      maxTotalWatchBufferBytes: 48 * 1024,
    });
    host = made;
    const { id } = await made.createSession();
    const vars = made.variables(id);
    const reader = vars.watch();
    await reader.ready();
    const read = take(reader, 6);
    const behind = vars.watch();
    await behind.ready();
    // Each update is ~10 KB: `behind` holds 30 KB, then `later` starts and both fall behind.
    for (let i = 0; i < 3; i++) await vars.set("x", `${i}`.repeat(10_000));
    const later = vars.watch();
    await later.ready();
    for (let i = 3; i < 6; i++) await vars.set("x", `${i}`.repeat(10_000));
    await assert.rejects(
      take(behind, 100),
      fails(ErrorType.ResourceExhausted, (e) => e.details.quota === "maxTotalWatchBufferBytes"),
    );
    assert.deepEqual(
      (await take(later, 3)).map((u) => (u.kind === "set" ? u.sequence : 0)),
      [4, 5, 6],
    );
    assert.equal((await read).length, 6);
  });
});
