/**
 * The Redis store's sessions: created, counted and ended by scripts on Redis, shared by
 * every node. A node serves a session it refreshed lately from its lease, without a round
 * trip (docs/stores.md#sliding-ttl-without-a-round-trip-per-call), and hears of every end,
 * whichever node caused it, on the ended channel.
 */
import { randomBytes } from "node:crypto";
import { ownerLimitReached, sessionLimitReached, sessionNotFound, sessionUnavailable } from "../errors.js";
import {
  type CreateOptions,
  type CreateResult,
  LEGACY_OWNER,
  type SessionEnded,
  type SessionEndReason,
  type SessionPage,
  type SessionQuery,
  type SessionRecord,
  type SessionTable,
} from "../session-table.js";
import type { RedisConnection } from "./connection.js";
import { CREATE, END, END_EXPIRED, RESERVE, SWEEP, TOUCH } from "./scripts/sessions.js";

export interface RedisSessionTableOptions {
  readonly timeoutMs: number;
  readonly maxSessions: number;
  /** How long this node trusts that a session it refreshed is alive before refreshing it again. */
  readonly leaseMs: number;
}

/** Ids taken out of the index per sweep round. */
const SWEEP_BATCH = 100;
/** Session records read per round of listSessions (pipelined). */
const LIST_PAGE = 200;

interface Lease {
  record: SessionRecord;
  /** The session counts in its owner's index, which refreshes keep current too. */
  counted: boolean;
  /** Epoch ms until which this node serves the session without asking Redis. */
  until: number;
  refreshing: Promise<SessionRecord | undefined> | undefined;
}

export class RedisSessionTable implements SessionTable {
  /** The TTL of a session's keys in Redis: timeoutMs plus a lease, so none expires inside a lease. */
  private readonly ttlMs: number;
  private readonly leases = new Map<string, Lease>();
  private readonly listeners: ((event: SessionEnded) => void)[] = [];

  constructor(
    private readonly redis: RedisConnection,
    private readonly options: RedisSessionTableOptions,
  ) {
    this.ttlMs = options.timeoutMs + options.leaseMs;
    redis.define(CREATE, TOUCH, END, END_EXPIRED, RESERVE, SWEEP);
    redis.subscribeAlways(redis.keys.endedChannel, (message) => {
      const [id = "", reason = "", node = ""] = message.toString().split("|");
      if (node !== redis.nodeId) this.ended({ id, reason: reason as SessionEndReason });
    });
    // Without the subscription, this node may miss session ends: every call asks Redis until it is back.
    redis.onSubscriberLost(() => this.leases.clear());
  }

  async create(
    id: string,
    metadata: Record<string, string>,
    now: number,
    options: CreateOptions,
  ): Promise<CreateResult> {
    const { redis } = this;
    const { owner } = options;
    const perOwner = options.maxPerOwner ?? 0;
    await this.reserve(id, owner, perOwner, now);
    const reply = (await redis.run(CREATE, redis.keys.session(id), [
      id,
      JSON.stringify(metadata),
      now,
      this.ttlMs,
      randomBytes(6).toString("hex"),
      owner,
      options.anyOwner === true ? "1" : "0",
      perOwner > 0 ? "1" : "0",
    ])) as [number, ...Buffer[]];
    if (reply[0] === -1) {
      // Counted for this owner by the reservation, but the session is another's.
      if (perOwner > 0) await redis.call((r) => r.zrem(redis.keys.owner(owner), id));
      throw sessionUnavailable(id);
    }
    const fields = reply.slice(1) as Buffer[];
    const record = toRecord(id, fields);
    if (record === undefined) throw sessionNotFound(id);
    this.grantLease(id, record, String(fields[4]) === "1", now);
    return { record, created: reply[0] === 1 };
  }

  async get(id: string, _now: number): Promise<SessionRecord | undefined> {
    const fields = (await this.redis.call((r) =>
      r.hmgetBuffer(this.redis.keys.meta(id), "md", "created", "last", "owner"),
    )) as (Buffer | null)[];
    return toRecord(id, fields);
  }

  /**
   * The live session, refreshed. Within a lease (this node refreshed it less than leaseMs
   * ago and has heard of no end since) this costs no round trip: the TTL in Redis was set
   * to timeoutMs + leaseMs then, so it cannot have expired.
   */
  async touch(id: string, now: number): Promise<SessionRecord | undefined> {
    const lease = this.leases.get(id);
    if (lease !== undefined && now < lease.until && this.redis.listening) {
      lease.record = { ...lease.record, lastAccessedAt: now };
      return lease.record;
    }
    if (lease?.refreshing !== undefined) return lease.refreshing;
    const refreshing = this.refresh(id, now);
    if (lease !== undefined) lease.refreshing = refreshing;
    try {
      return await refreshing;
    } finally {
      if (lease !== undefined) lease.refreshing = undefined;
    }
  }

  async delete(id: string, reason: SessionEndReason, owner?: string): Promise<boolean> {
    const { redis } = this;
    const ended = (await redis.run(END, redis.keys.session(id), [
      redis.keys.endedChannel,
      this.endMessage(id, reason),
      owner ?? "",
    ])) as [number, Buffer?, Buffer?];
    if (ended[0] !== 1) return false;
    await Promise.all([
      redis.call((r) => r.zrem(redis.keys.index, id)),
      String(ended[2]) === "1"
        ? redis.call((r) => r.zrem(redis.keys.owner(String(ended[1])), id))
        : undefined,
    ]);
    this.ended({ id, reason });
    return true;
  }

  async count(): Promise<number> {
    return this.redis.call((r) => r.zcount(this.redis.keys.index, `(${Date.now()}`, "+inf"));
  }

  /**
   * Reads the ids of every live session from the index, sorts them, and reads the records
   * after `query.after` in pages (pipelined) until one more than `query.limit` match.
   */
  async listSessions(query: SessionQuery, now: number): Promise<SessionPage> {
    const { redis } = this;
    const ids = (await redis.call((r) => r.zrangebyscore(redis.keys.index, `(${now}`, "+inf")))
      .filter((id) => id > query.after)
      .sort((a, b) => (a < b ? -1 : 1));
    const sessions: SessionRecord[] = [];
    for (let start = 0; start < ids.length && sessions.length <= query.limit; start += LIST_PAGE) {
      const records = await Promise.all(ids.slice(start, start + LIST_PAGE).map((id) => this.get(id, now)));
      for (const record of records) {
        if (record === undefined || (query.owner !== undefined && record.owner !== query.owner)) continue;
        sessions.push(record);
      }
    }
    return { sessions: sessions.slice(0, query.limit), more: sessions.length > query.limit };
  }

  /**
   * Ends the sessions whose time in the index has passed, unless a refresh through
   * another node kept one alive (then it is put back with its real expiry). Every node
   * sweeps; taking ids out of the index is atomic, so each session ends once.
   */
  async sweep(now: number): Promise<void> {
    const { redis } = this;
    for (const [id, lease] of this.leases) {
      if (lease.until + this.options.timeoutMs <= now) this.leases.delete(id);
    }
    for (;;) {
      const ids = ((await redis.run(SWEEP, [redis.keys.index], [now, SWEEP_BATCH])) as Buffer[]).map(String);
      for (const id of ids) await this.endIfExpired(id, now);
      if (ids.length < SWEEP_BATCH) return;
    }
  }

  onSessionEnded(listener: (event: SessionEnded) => void): void {
    this.listeners.push(listener);
  }

  /** Forgets every lease (the store closes). */
  clear(): void {
    this.leases.clear();
  }

  /** Counts the session in the global index and its owner's, refusing it at either limit. */
  private async reserve(id: string, owner: string, perOwner: number, now: number): Promise<void> {
    const { redis } = this;
    const reserved = (await redis.run(
      RESERVE,
      [redis.keys.index, redis.keys.owner(owner)],
      [id, now, now + this.ttlMs, this.options.maxSessions, perOwner],
    )) as [number, number?];
    if (reserved[0] === 0) {
      throw sessionLimitReached(
        `the hosts sharing this Redis already have ${reserved[1]} sessions, their limit`,
        this.options.maxSessions,
      );
    }
    if (reserved[0] === 2) throw ownerLimitReached(owner, reserved[1] ?? 0, perOwner);
  }

  /** Ends a session the sweep took out of the index, or puts it back when another node refreshed it. */
  private async endIfExpired(id: string, now: number): Promise<void> {
    const { redis } = this;
    const [ttl, owner, counted] = (await redis.run(END_EXPIRED, redis.keys.session(id), [
      redis.keys.endedChannel,
      this.endMessage(id, "expired"),
    ])) as [number, Buffer?, Buffer?];
    if (ttl <= 0) {
      this.ended({ id, reason: "expired" });
      return;
    }
    await Promise.all([
      redis.call((r) => r.zadd(redis.keys.index, "GT", now + ttl, id)),
      String(counted) === "1"
        ? redis.call((r) => r.zadd(redis.keys.owner(String(owner)), "GT", now + ttl, id))
        : undefined,
    ]);
  }

  private async refresh(id: string, now: number): Promise<SessionRecord | undefined> {
    const { redis } = this;
    const lease = this.leases.get(id);
    const expiry = now + this.ttlMs;
    // Independent commands: with auto-pipelining they leave in one write (one round trip
    // on a single Redis; on a Cluster each goes to its own slot's node).
    const [fields] = await Promise.all([
      redis.run(TOUCH, redis.keys.session(id), [now, this.ttlMs]),
      redis.call((r) => r.zadd(redis.keys.index, "XX", "GT", expiry, id)),
      lease?.counted === true
        ? redis.call((r) => r.zadd(redis.keys.owner(lease.record.owner), "XX", "GT", expiry, id))
        : undefined,
    ]);
    const record = fields === null ? undefined : toRecord(id, fields as Buffer[]);
    if (record === undefined) {
      this.leases.delete(id);
      return undefined;
    }
    const counted = String((fields as Buffer[])[4]) === "1";
    if (counted && lease?.counted !== true) {
      // First refresh through this node: the owner was not known when the commands left.
      await redis.call((r) => r.zadd(redis.keys.owner(record.owner), "XX", "GT", expiry, id));
    }
    this.grantLease(id, record, counted, now);
    return record;
  }

  private grantLease(id: string, record: SessionRecord, counted: boolean, now: number): void {
    if (!this.redis.listening) return;
    const lease = this.leases.get(id);
    const until = now + this.options.leaseMs;
    if (lease === undefined) this.leases.set(id, { record, counted, until, refreshing: undefined });
    else {
      lease.record = record;
      lease.counted = counted;
      lease.until = until;
    }
  }

  private ended(event: SessionEnded): void {
    this.leases.delete(event.id);
    for (const listener of this.listeners) listener(event);
  }

  private endMessage(id: string, reason: SessionEndReason): string {
    return `${id}|${reason}|${this.redis.nodeId}`;
  }
}

function toRecord(id: string, fields: readonly (Buffer | null | undefined)[]): SessionRecord | undefined {
  const [md, created, last, owner] = fields;
  if (md == null || created == null || last == null) return undefined;
  return {
    id,
    metadata: Object.freeze(JSON.parse(md.toString()) as Record<string, string>),
    createdAt: Number(created),
    lastAccessedAt: Number(last),
    owner: owner == null ? LEGACY_OWNER : owner.toString(),
  };
}
