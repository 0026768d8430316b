/**
 * The Redis session store: sessions, variables and their change logs live in Redis, so
 * several host nodes serve one set of sessions and a restarted host finds them again.
 * docs/stores.md describes the keys, the commit protocol, the watch design and their limits.
 */
import { randomBytes } from "node:crypto";
import { asBuffer, BridgeError, ErrorType, pb } from "@toolbridge/core";
import { Redis, type RedisOptions } from "ioredis";
import { SessionFeed } from "./redis-feed.js";
import {
  CLAIM_CALL,
  COMMIT,
  COUNTS,
  CREATE,
  defineScripts,
  END,
  END_EXPIRED,
  GET_VARIABLE,
  type LuaScript,
  RATE,
  READ_LOG,
  READ_SLOT,
  RESERVE,
  runScript,
  SESSION_TOOL,
  SETTLE_CALL,
  SNAPSHOT,
  SWEEP,
  TOUCH,
} from "./redis-scripts.js";
import { SlotCache } from "./slot-cache.js";
import {
  type CallClaim,
  type CallClaimRequest,
  type CallRecordLimits,
  type ChangeHistory,
  type CreateOptions,
  type CreateResult,
  callRecordLimits,
  DEFAULT_MAX_SESSION_BYTES,
  DEFAULT_WATCH_HISTORY,
  type Following,
  historyTrimmed,
  LEGACY_OWNER,
  MAX_TOMBSTONES,
  type NodeEntry,
  ownerLimitReached,
  resumeAhead,
  type SessionEnded,
  type SessionEndReason,
  type SessionRecord,
  type SessionStoreOptions,
  type SharedSessionStore,
  sessionLimitReached,
  sessionNotFound,
  sessionUnavailable,
  type VariableChange,
  type VariableFilter,
  type VariableMutation,
  type VariableMutationResult,
  type VariableSlot,
  type VariableSnapshot,
} from "./store.js";

export interface RedisSessionStoreOptions extends SessionStoreOptions {
  /** redis://[user:password@]host:port/db, or rediss://... for TLS. */
  readonly url: string;
  /** Prefix of every key and channel, so that several deployments can share one Redis. */
  readonly keyPrefix?: string;
  /**
   * How long this node trusts that a session it refreshed is alive before refreshing it
   * again (the TTL in Redis is timeoutMs plus this). Default: a tenth of timeoutMs, at most 1 s.
   */
  readonly leaseMs?: number;
  /** Extra ioredis options (TLS certificates, timeouts, ...); the store's own settings win. */
  readonly redisOptions?: RedisOptions;
}

/** Ids taken out of the index per sweep round. */
const SWEEP_BATCH = 100;
/** Log entries read per round trip when resuming a watch or filling a gap. */
const LOG_PAGE = 256;
/** Attempts of one variable mutation that keeps meeting concurrent writes. */
const MAX_ATTEMPTS = 100;
/** A node's address stays in the directory this long after its last refresh. */
const NODE_TTL_MS = 3000;

/** A node's directory entry as stored: JSON, or a bare address (written by hosts that forwarded in plaintext only). */
function parseNodeEntry(value: string): NodeEntry {
  if (!value.startsWith("{")) return { address: value, tls: false };
  const parsed = JSON.parse(value) as { address?: unknown; tls?: unknown };
  return { address: String(parsed.address ?? ""), tls: parsed.tls === true };
}
const NODE_REFRESH_MS = 1000;

interface Lease {
  record: SessionRecord;
  /** The session counts in its owner's index, which refreshes keep current too. */
  counted: boolean;
  /** Epoch ms until which this node serves the session without asking Redis. */
  until: number;
  refreshing: Promise<SessionRecord | undefined> | undefined;
}

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "redis (unparseable URL)";
  }
}

/**
 * A SessionStore in Redis, shared by every host node that uses the same Redis (and key
 * prefix). Nodes must be given the same timeoutMs, maxSessions and watchHistory.
 * A Redis failure surfaces as BridgeError(Unavailable) naming Redis; the store
 * reconnects by itself and continues when Redis is back.
 */
export class RedisSessionStore implements SharedSessionStore {
  /** Commands. */
  private readonly redis: Redis;
  /** Pub/Sub: session ends and the changes of followed sessions. */
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly where: string;
  /** This node's name among the nodes sharing the Redis: in messages, claims and the node directory. */
  readonly nodeId = randomBytes(6).toString("hex");
  private readonly leaseMs: number;
  private readonly ttlMs: number;
  private readonly history: number;
  private readonly maxSessionBytes: number;
  private readonly callRecords: Required<CallRecordLimits>;
  private readonly endedChannel: string;
  private advertising: NodeJS.Timeout | undefined;
  private rateStarts = 0;
  private readonly leases = new Map<string, Lease>();
  private readonly slots = new SlotCache();
  private readonly feeds = new Map<string, SessionFeed>();
  private readonly listeners: ((event: SessionEnded) => void)[] = [];
  private readonly variableListeners: ((change: VariableChange) => void)[] = [];
  private readonly lostListeners: ((sessionId: string, error: BridgeError) => void)[] = [];
  private readonly errorListeners: ((error: Error) => void)[] = [];
  /** True while the ended channel is subscribed: only then can leases be trusted. */
  private listening = false;
  private closing = false;

  constructor(private readonly options: RedisSessionStoreOptions) {
    const { url } = options;
    if (!/^rediss?:\/\//.test(url)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `invalid Redis URL ${JSON.stringify(redactRedisUrl(url))}: use redis://host:port/db or rediss://host:port/db`,
        { details: { field: "store" } },
      );
    }
    this.where = redactRedisUrl(url);
    this.prefix = options.keyPrefix ?? "toolbridge:";
    this.leaseMs = options.leaseMs ?? Math.max(1, Math.min(1000, Math.floor(options.timeoutMs / 10)));
    this.ttlMs = options.timeoutMs + this.leaseMs;
    this.history = Math.max(1, options.watchHistory ?? DEFAULT_WATCH_HISTORY);
    this.maxSessionBytes = options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
    this.callRecords = callRecordLimits(options);
    this.endedChannel = `${this.prefix}ended`;
    const common: RedisOptions = {
      ...options.redisOptions,
      // A command whose connection drops fails at once (the caller gets Unavailable)
      // instead of being sent again after a reconnect, where a write could apply twice.
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
      enableAutoPipelining: true,
    };
    this.redis = new Redis(url, { commandTimeout: 10_000, ...common });
    defineScripts(this.redis);
    this.subscriber = new Redis(url, { ...common, autoResubscribe: false, enableAutoPipelining: false });
    this.redis.on("error", (error: Error) => this.reportError(error));
    this.subscriber.on("error", (error: Error) => this.reportError(error));
    this.subscriber.on("ready", () => this.subscribe());
    this.subscriber.on("close", () => this.subscriberLost());
    this.subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => this.message(channel, message));
  }

  /** Where the store is, for messages: the URL without password. */
  get description(): string {
    return this.where;
  }

  /** Told about connection errors (the store recovers by itself); for logging. */
  onConnectionError(listener: (error: Error) => void): void {
    this.errorListeners.push(listener);
  }

  async create(
    id: string,
    metadata: Record<string, string>,
    now: number,
    options: CreateOptions,
  ): Promise<CreateResult> {
    const { owner } = options;
    const perOwner = options.maxPerOwner ?? 0;
    const reserved = (await this.run(
      RESERVE,
      [this.indexKey(), this.ownerKey(owner)],
      [id, now, now + this.ttlMs, this.options.maxSessions, perOwner],
    )) as [number, number?];
    if (reserved[0] === 0) {
      throw sessionLimitReached(
        `the hosts sharing this Redis already have ${reserved[1]} sessions, their limit`,
        this.options.maxSessions,
      );
    }
    if (reserved[0] === 2) throw ownerLimitReached(owner, reserved[1] ?? 0, perOwner);
    const reply = (await this.run(CREATE, this.keys(id), [
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
      // Counted for this owner by the reservation above, but the session is another's.
      if (perOwner > 0) await this.call(() => this.redis.zrem(this.ownerKey(owner), id));
      throw sessionUnavailable(id);
    }
    const fields = reply.slice(1) as Buffer[];
    const record = toRecord(id, fields);
    if (record === undefined) throw sessionNotFound(id);
    this.grantLease(id, record, String(fields[4]) === "1", now);
    return { record, created: reply[0] === 1 };
  }

  async get(id: string, _now: number): Promise<SessionRecord | undefined> {
    const fields = (await this.call(() =>
      this.redis.hmgetBuffer(this.metaKey(id), "md", "created", "last", "owner"),
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
    if (lease !== undefined && now < lease.until && this.listening) {
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
    const ended = (await this.run(END, this.keys(id), [
      this.endedChannel,
      this.endMessage(id, reason),
      owner ?? "",
    ])) as [number, Buffer?, Buffer?];
    if (ended[0] !== 1) return false;
    await Promise.all([
      this.call(() => this.redis.zrem(this.indexKey(), id)),
      String(ended[2]) === "1"
        ? this.call(() => this.redis.zrem(this.ownerKey(String(ended[1])), id))
        : undefined,
    ]);
    this.ended({ id, reason });
    return true;
  }

  async count(): Promise<number> {
    return this.call(() => this.redis.zcount(this.indexKey(), `(${Date.now()}`, "+inf"));
  }

  /**
   * Ends the sessions whose time in the index has passed, unless a refresh through
   * another node kept one alive (then it is put back with its real expiry). Every node
   * sweeps; taking ids out of the index is atomic, so each session ends once.
   */
  async sweep(now: number): Promise<void> {
    for (const [id, lease] of this.leases) {
      if (lease.until + this.options.timeoutMs <= now) this.leases.delete(id);
    }
    for (;;) {
      const ids = ((await this.run(SWEEP, [this.indexKey()], [now, SWEEP_BATCH])) as Buffer[]).map(String);
      for (const id of ids) {
        const [ttl, owner, counted] = (await this.run(END_EXPIRED, this.keys(id), [
          this.endedChannel,
          this.endMessage(id, "expired"),
        ])) as [number, Buffer?, Buffer?];
        if (ttl > 0) {
          await Promise.all([
            this.call(() => this.redis.zadd(this.indexKey(), "GT", now + ttl, id)),
            String(counted) === "1"
              ? this.call(() => this.redis.zadd(this.ownerKey(String(owner)), "GT", now + ttl, id))
              : undefined,
          ]);
        } else {
          this.ended({ id, reason: "expired" });
        }
      }
      if (ids.length < SWEEP_BATCH) return;
    }
  }

  onSessionEnded(listener: (event: SessionEnded) => void): void {
    this.listeners.push(listener);
  }

  /** Disconnects; the sessions stay in Redis for the other nodes and the next start. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.advertising);
    for (const feed of this.feeds.values()) feed.close();
    this.feeds.clear();
    this.leases.clear();
    await Promise.allSettled([this.redis.quit(), this.subscriber.quit()]);
    this.redis.disconnect();
    this.subscriber.disconnect();
  }

  async getVariable(sessionId: string, name: string, _now: number): Promise<pb.Variable | undefined> {
    const reply = (await this.run(
      GET_VARIABLE,
      [this.metaKey(sessionId), this.varsKey(sessionId)],
      [name],
    )) as [Buffer, Buffer | null] | null;
    if (reply === null) throw sessionNotFound(sessionId);
    return reply[1] === null ? undefined : pb.Variable.decode(reply[1]);
  }

  async listVariables(sessionId: string, filter: VariableFilter, _now: number): Promise<VariableSnapshot> {
    const names = filter.names !== undefined && filter.names.size > 0 ? [...filter.names] : [];
    const reply = (await this.run(SNAPSHOT, [this.metaKey(sessionId), this.varsKey(sessionId)], names)) as
      | [Buffer, (Buffer | null)[]]
      | null;
    if (reply === null) throw sessionNotFound(sessionId);
    const prefix = filter.prefix ?? "";
    const variables: pb.Variable[] = [];
    const [sequence, fields] = reply;
    if (names.length > 0) {
      for (const encoded of fields) {
        if (encoded === null) continue;
        const variable = pb.Variable.decode(encoded);
        if (variable.name.startsWith(prefix)) variables.push(variable);
      }
    } else {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = String(fields[i]);
        const encoded = fields[i + 1];
        if (name.startsWith(prefix) && encoded != null) variables.push(pb.Variable.decode(encoded));
      }
    }
    variables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { variables, sequence: BigInt(String(sequence)) };
  }

  async countVariables(sessionId: string, _now: number): Promise<number> {
    const reply = (await this.run(COUNTS, [this.metaKey(sessionId), this.varsKey(sessionId)], [])) as
      | [Buffer, number]
      | null;
    if (reply === null) throw sessionNotFound(sessionId);
    return reply[1];
  }

  /**
   * Optimistic: the mutation runs here on the slot this node last saw (or reads it
   * first), and one script commits the result only if that slot is still current in
   * Redis; otherwise the script answers with the current slot and the mutation runs
   * again. A write to a variable this node wrote or read before costs one round trip.
   */
  async mutateVariable(
    sessionId: string,
    name: string,
    mutation: VariableMutation,
    _now: number,
  ): Promise<VariableChange> {
    const keys = this.keys(sessionId);
    let slot = this.slots.get(sessionId, name);
    let confirmed = false;
    if (slot === undefined) {
      slot = this.parseSlot(sessionId, await this.run(READ_SLOT, keys, [name]));
      confirmed = true;
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let result: VariableMutationResult;
      try {
        result = mutation(slot.slot);
      } catch (error) {
        // A refusal counts only when the slot it saw is the current one.
        if (confirmed) throw error;
        slot = this.parseSlot(sessionId, await this.run(READ_SLOT, keys, [name]));
        confirmed = true;
        continue;
      }
      const bytes = result.kind === "set" ? pb.Variable.encode(result.variable).finish() : undefined;
      const encoded = bytes === undefined ? "" : asBuffer(bytes);
      const version = result.kind === "set" ? result.variable.version : result.version;
      const current = slot.slot.current;
      const reply = (await this.run(COMMIT, keys, [
        name,
        current === undefined ? "" : String(current.version),
        String(slot.slot.versionFloor),
        // Fewer than the limit before the commit, i.e. at most limit - 1.
        result.kind === "set" && result.maxVariables !== undefined
          ? result.maxVariables - 1
          : slot.slot.count,
        result.kind === "set" ? "s" : "d",
        String(version),
        encoded,
        MAX_TOMBSTONES,
        this.history,
        this.changesChannel(sessionId),
        slot.incarnation,
        result.kind === "set" && result.maxSessionBytes !== undefined ? result.maxSessionBytes : "",
        this.maxSessionBytes,
      ])) as [number, ...unknown[]] | null;
      if (reply === null) {
        this.slots.dropSession(sessionId);
        throw sessionNotFound(sessionId);
      }
      if (reply[0] === 1) {
        const sequence = BigInt(reply[1] as number);
        const count = slot.slot.count + (current === undefined ? 1 : 0) - (result.kind === "deleted" ? 1 : 0);
        if (result.kind === "set") {
          const bytes = slot.slot.bytes - slot.slot.currentBytes + encoded.length;
          const cached = {
            slot: { current: result.variable, versionFloor: 0n, count, bytes, currentBytes: encoded.length },
            incarnation: slot.incarnation,
          };
          this.slots.set(sessionId, name, cached, encoded.length);
        } else {
          this.slots.delete(sessionId, name);
        }
        const change: VariableChange = { sessionId, name, sequence, result };
        this.feeds.get(sessionId)?.offer(change);
        return change;
      }
      slot = this.parseSlot(sessionId, reply.slice(1));
      confirmed = true;
    }
    throw new BridgeError(
      ErrorType.Unavailable,
      `variable '${name}' of session '${sessionId}' changed under ${MAX_ATTEMPTS} attempts to write it; retry`,
      { details: { variable: name } },
    );
  }

  onVariableChanged(listener: (change: VariableChange) => void): void {
    this.variableListeners.push(listener);
  }

  /**
   * Subscribes this node to the session's change channel (once for all its followers),
   * then reads the session's sequence: every change after it arrives on the channel or
   * from this node's own commits, and the log fills any gap.
   */
  async follow(sessionId: string, _now: number): Promise<Following> {
    let feed = this.feeds.get(sessionId);
    if (feed === undefined) {
      const created = new SessionFeed(sessionId, this.feedSource(), (idle) => this.unfollow(idle), {
        changes: this.history,
        bytes: this.maxSessionBytes,
      });
      feed = created;
      this.feeds.set(sessionId, created);
      created.ready = (async () => {
        await this.call(() => this.subscriber.subscribe(this.changesChannel(sessionId)));
        const sequence = await this.call(() => this.redis.hget(this.metaKey(sessionId), "seq"));
        if (sequence === null) throw sessionNotFound(sessionId);
        created.start(BigInt(sequence));
      })();
      created.ready.catch(() => {
        if (this.feeds.get(sessionId) === created) this.dropFeed(created);
      });
    }
    await feed.ready;
    return feed.follower();
  }

  onFollowLost(listener: (sessionId: string, error: BridgeError) => void): void {
    this.lostListeners.push(listener);
  }

  async changesSince(sessionId: string, after: bigint, _now: number): Promise<ChangeHistory> {
    const first = await this.readLog(sessionId, after, LOG_PAGE);
    if (after > first.sequence) throw resumeAhead(sessionId, after, first.sequence);
    const changes = [...first.changes];
    if (after < first.sequence && changes[0]?.sequence !== after + 1n) {
      throw historyTrimmed(sessionId, after, changes[0]?.sequence ?? first.sequence + 1n);
    }
    let last = changes.at(-1)?.sequence ?? after;
    while (last < first.sequence) {
      const page = await this.readLog(sessionId, last, LOG_PAGE);
      if (page.changes[0]?.sequence !== last + 1n) {
        throw historyTrimmed(sessionId, after, page.changes[0]?.sequence ?? page.sequence + 1n);
      }
      for (const change of page.changes) if (change.sequence <= first.sequence) changes.push(change);
      last = changes.at(-1)?.sequence ?? last;
    }
    return { changes, sequence: first.sequence };
  }

  async claimCall(
    sessionId: string,
    requestId: string,
    claim: CallClaimRequest,
    now: number,
  ): Promise<CallClaim> {
    const reply = (await this.run(CLAIM_CALL, this.callKeys(sessionId), [
      requestId,
      claim.node,
      Math.ceil(claim.until),
      now,
      this.callRecords.windowMs,
      claim.takeOverFrom ?? "",
      claim.fingerprint,
    ])) as [number, ...Buffer[]] | null;
    if (reply === null) throw sessionNotFound(sessionId);
    if (reply[0] === 3) return { state: "reused" };
    if (reply[0] === 1) return { state: "recorded", outcome: reply[1] as Buffer };
    if (reply[0] === 2) return { state: "running", node: String(reply[1]), until: Number(String(reply[2])) };
    return { state: "claimed" };
  }

  async settleCall(
    sessionId: string,
    requestId: string,
    node: string,
    outcome: Uint8Array | undefined,
    now: number,
  ): Promise<void> {
    await this.run(SETTLE_CALL, this.callKeys(sessionId), [
      requestId,
      node,
      outcome === undefined ? "" : asBuffer(outcome),
      now,
      this.callRecords.windowMs,
      this.callRecords.maxRecords,
      this.callRecords.maxBytes,
    ]);
  }

  /**
   * Counts a start of `tool` against its rate limit in Redis, shared by every node: 0 when
   * admitted, else the milliseconds until a start leaves the 60-second window.
   */
  async takeRateSlot(tool: string, limit: number): Promise<number> {
    this.rateStarts = (this.rateStarts + 1) % Number.MAX_SAFE_INTEGER;
    return (await this.run(
      RATE,
      [`${this.prefix}rate:{${tool}}`],
      [limit, `${this.nodeId}:${this.rateStarts}`],
    )) as number;
  }

  /**
   * Advertises this node's gRPC address under its nodeId (refreshed every NODE_REFRESH_MS,
   * gone NODE_TTL_MS after the node stops refreshing it), so other nodes can forward calls here.
   */
  async advertise(entry: NodeEntry): Promise<void> {
    const key = this.nodeKey(this.nodeId);
    const value = JSON.stringify({ address: entry.address, tls: entry.tls });
    const refresh = () => this.call(() => this.redis.set(key, value, "PX", NODE_TTL_MS));
    clearInterval(this.advertising);
    this.advertising = setInterval(() => {
      refresh().catch((error: unknown) => this.reportError(error as Error));
    }, NODE_REFRESH_MS);
    this.advertising.unref();
    await refresh();
  }

  /** Stops advertising this node (a graceful stop); its address is removed at once. */
  async withdraw(): Promise<void> {
    clearInterval(this.advertising);
    this.advertising = undefined;
    await this.call(() => this.redis.del(this.nodeKey(this.nodeId))).catch(() => {});
  }

  /** The entry a node advertises; undefined once it has stopped (or stopped refreshing it). */
  async nodeEntry(node: string): Promise<NodeEntry | undefined> {
    const value = await this.call(() => this.redis.get(this.nodeKey(node)));
    return value === null ? undefined : parseNodeEntry(value);
  }

  /** The token the nodes on this Redis (and key prefix) forward calls to each other with. */
  async peerToken(): Promise<string> {
    const key = `${this.prefix}peer-token`;
    await this.call(() => this.redis.set(key, randomBytes(32).toString("base64url"), "NX"));
    const token = await this.call(() => this.redis.get(key));
    if (token === null) throw asUnavailable(this.where, new Error(`${key} vanished`));
    return token;
  }

  /** Lists a session tool (its encoded ToolSpec) as served by this node. Throws SessionNotFound. */
  async publishSessionTool(sessionId: string, name: string, spec: Uint8Array): Promise<void> {
    const value = Buffer.concat([Buffer.from(`${this.nodeId}|`), asBuffer(spec)]);
    const done = (await this.run(SESSION_TOOL, this.toolKeys(sessionId), [
      name,
      value,
      this.nodeId,
    ])) as number;
    if (done !== 1) throw sessionNotFound(sessionId);
  }

  /** Removes a session tool this node listed. */
  async withdrawSessionTool(sessionId: string, name: string): Promise<void> {
    await this.run(SESSION_TOOL, this.toolKeys(sessionId), [name, "", this.nodeId]);
  }

  /** The session tools every node listed for the session, by name: the serving node and the spec. */
  async sessionTools(sessionId: string): Promise<Map<string, { node: string; spec: Buffer }>> {
    const fields = await this.call(() => this.redis.hgetallBuffer(this.toolKeys(sessionId)[1] as string));
    const tools = new Map<string, { node: string; spec: Buffer }>();
    for (const [name, value] of Object.entries(fields)) {
      const bar = value.indexOf(0x7c);
      tools.set(name, { node: value.toString("latin1", 0, bar), spec: value.subarray(bar + 1) });
    }
    return tools;
  }

  // ---------------------------------------------------------------------------

  private async refresh(id: string, now: number): Promise<SessionRecord | undefined> {
    const lease = this.leases.get(id);
    const expiry = now + this.ttlMs;
    // Independent commands: with auto-pipelining they leave in one write (one round trip
    // on a single Redis; on a Cluster each goes to its own slot's node).
    const [fields] = await Promise.all([
      this.run(TOUCH, this.keys(id), [now, this.ttlMs]),
      this.call(() => this.redis.zadd(this.indexKey(), "XX", "GT", expiry, id)),
      lease?.counted === true
        ? this.call(() => this.redis.zadd(this.ownerKey(lease.record.owner), "XX", "GT", expiry, id))
        : undefined,
    ]);
    const record = fields === null ? undefined : toRecord(id, fields as Buffer[]);
    if (record === undefined) {
      this.dropLease(id);
      return undefined;
    }
    const counted = String((fields as Buffer[])[4]) === "1";
    if (counted && lease?.counted !== true) {
      // First refresh through this node: the owner was not known when the commands left.
      await this.call(() => this.redis.zadd(this.ownerKey(record.owner), "XX", "GT", expiry, id));
    }
    this.grantLease(id, record, counted, now);
    return record;
  }

  private grantLease(id: string, record: SessionRecord, counted: boolean, now: number): void {
    if (!this.listening) return;
    const lease = this.leases.get(id);
    if (lease === undefined)
      this.leases.set(id, { record, counted, until: now + this.leaseMs, refreshing: undefined });
    else {
      lease.record = record;
      lease.counted = counted;
      lease.until = now + this.leaseMs;
    }
  }

  private dropLease(id: string): void {
    this.leases.delete(id);
  }

  private parseSlot(sessionId: string, reply: unknown): { slot: VariableSlot; incarnation: string } {
    if (reply === null) {
      this.slots.dropSession(sessionId);
      throw sessionNotFound(sessionId);
    }
    const [encoded, floor, count, incarnation, bytes] = reply as [
      Buffer | null,
      Buffer,
      number,
      Buffer,
      Buffer,
    ];
    const current = encoded === null ? undefined : pb.Variable.decode(encoded);
    return {
      slot: {
        current,
        versionFloor: current === undefined ? BigInt(String(floor)) : 0n,
        count,
        bytes: Number(String(bytes)),
        currentBytes: encoded?.length ?? 0,
      },
      incarnation: String(incarnation),
    };
  }

  private async readLog(
    sessionId: string,
    after: bigint,
    count: number,
  ): Promise<{ sequence: bigint; changes: VariableChange[] }> {
    const reply = (await this.run(
      READ_LOG,
      [this.metaKey(sessionId), this.logKey(sessionId)],
      [`${after + 1n}-0`, count],
    )) as [Buffer, [Buffer, Buffer[]][]] | null;
    if (reply === null) throw sessionNotFound(sessionId);
    const changes = reply[1].map(([id, fields]) => logChange(sessionId, String(id), fields));
    return { sequence: BigInt(String(reply[0])), changes };
  }

  private feedSource() {
    return {
      readAfter: async (sessionId: string, after: bigint) =>
        (await this.readLog(sessionId, after, LOG_PAGE)).changes,
      deliver: (change: VariableChange) => {
        for (const listener of this.variableListeners) listener(change);
      },
      lost: (sessionId: string, error: BridgeError) => {
        const feed = this.feeds.get(sessionId);
        if (feed !== undefined) this.dropFeed(feed);
        // A session that is gone ends its watches through its ended event instead.
        if (error instanceof BridgeError && error.type === ErrorType.SessionNotFound) return;
        for (const listener of this.lostListeners) listener(sessionId, asUnavailable(this.where, error));
      },
    };
  }

  private unfollow(feed: SessionFeed): void {
    if (this.feeds.get(feed.sessionId) === feed) this.dropFeed(feed);
  }

  private dropFeed(feed: SessionFeed): void {
    feed.close();
    this.feeds.delete(feed.sessionId);
    if (this.listening) this.subscriber.unsubscribe(this.changesChannel(feed.sessionId)).catch(() => {});
  }

  private subscribe(): void {
    this.subscriber.subscribe(this.endedChannel).then(
      () => {
        this.listening = true;
      },
      (error: unknown) => this.reportError(error as Error),
    );
  }

  /**
   * Without the subscription, this node may miss session ends and changes: it drops its
   * leases and slot cache (every call asks Redis until it is back) and ends its followers.
   */
  private subscriberLost(): void {
    this.listening = false;
    this.leases.clear();
    this.slots.clear();
    const feeds = [...this.feeds.values()];
    this.feeds.clear();
    if (this.closing) return;
    const error = new BridgeError(
      ErrorType.Unavailable,
      `lost the connection to the session store (Redis at ${this.where}); watch again, resuming after ` +
        "the last sequence seen, once it is back",
      { details: { store: "redis" } },
    );
    for (const feed of feeds) {
      feed.close();
      for (const listener of this.lostListeners) listener(feed.sessionId, error);
    }
  }

  /** A Pub/Sub message. It runs inside ioredis's event handler, where a throw would end the process. */
  private message(channel: Buffer, message: Buffer): void {
    try {
      this.dispatch(channel.toString(), message);
    } catch (error) {
      this.reportError(error as Error);
    }
  }

  private dispatch(name: string, message: Buffer): void {
    if (name === this.endedChannel) {
      const [id = "", reason = "", node = ""] = message.toString().split("|");
      if (node !== this.nodeId) this.ended({ id, reason: reason as SessionEndReason });
      return;
    }
    const sessionId = name.slice(this.prefix.length + 1, name.length - "}:changes".length);
    const feed = this.feeds.get(sessionId);
    if (feed === undefined) return;
    // This node's own commits come back here too, already delivered: skip them undecoded.
    const sequence = message.subarray(0, message.indexOf(0x7c)).toString("latin1");
    if (!feed.wants(BigInt(sequence))) return;
    let change: VariableChange;
    try {
      change = publishedChange(sessionId, message);
    } catch (error) {
      // Unreadable: fill from the log instead, as for a lost message.
      this.reportError(error as Error);
      return;
    }
    feed.offer(change);
  }

  private ended(event: SessionEnded): void {
    this.dropLease(event.id);
    this.slots.dropSession(event.id);
    const feed = this.feeds.get(event.id);
    if (feed !== undefined) this.dropFeed(feed);
    for (const listener of this.listeners) listener(event);
  }

  private endMessage(id: string, reason: SessionEndReason): string {
    return `${id}|${reason}|${this.nodeId}`;
  }

  private reportError(error: Error): void {
    for (const listener of this.errorListeners) listener(error);
  }

  private run(script: LuaScript, keys: readonly string[], args: readonly (string | Buffer | number)[]) {
    return this.call(() => runScript(this.redis, script, keys, args));
  }

  /** Runs a Redis command; any failure of Redis becomes Unavailable naming it. */
  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw asUnavailable(this.where, error);
    }
  }

  private keys(id: string): string[] {
    const meta = this.metaKey(id);
    return [
      meta,
      `${meta}:vars`,
      `${meta}:ver`,
      `${meta}:gone`,
      `${meta}:log`,
      `${meta}:calls`,
      `${meta}:callt`,
      `${meta}:tools`,
      `${meta}:logz`,
    ];
  }

  private callKeys(id: string): string[] {
    const meta = this.metaKey(id);
    return [meta, `${meta}:calls`, `${meta}:callt`];
  }

  private toolKeys(id: string): string[] {
    const meta = this.metaKey(id);
    return [meta, `${meta}:tools`];
  }

  private nodeKey(node: string): string {
    return `${this.prefix}node:${node}`;
  }

  private metaKey(id: string): string {
    return `${this.prefix}{${id}}`;
  }

  private varsKey(id: string): string {
    return `${this.prefix}{${id}}:vars`;
  }

  private logKey(id: string): string {
    return `${this.prefix}{${id}}:log`;
  }

  private indexKey(): string {
    return `${this.prefix}sessions`;
  }

  /**
   * The sessions `owner` owns (id -> expiry). Its hash tag is the global index's name, so
   * both live in one Cluster slot and one script counts against both limits.
   */
  private ownerKey(owner: string): string {
    return `${this.prefix}owner:{${this.indexKey()}}:${owner}`;
  }

  private changesChannel(id: string): string {
    return `${this.prefix}{${id}}:changes`;
  }
}

/**
 * A failed Redis command as Unavailable. The message says what happened in the store's terms
 * (unreachable, no answer in time, or Redis's own error reply); the client library's wording
 * (e.g. ioredis's "Reached the max retries per request limit") stays in details.reason and
 * the cause, for the logs.
 */
function asUnavailable(where: string, error: unknown): BridgeError {
  if (error instanceof BridgeError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  const redis = `the session store (Redis at ${where})`;
  const what =
    error instanceof Error && error.name === "ReplyError"
      ? `${redis} answered with an error: ${reason.slice(0, 200)}`
      : reason === "Command timed out"
        ? `${redis} did not answer in time`
        : `${redis} is unreachable`;
  return new BridgeError(ErrorType.Unavailable, `${what}; retry in a moment`, {
    details: { store: "redis", reason: reason.slice(0, 200), retriable: "true" },
    cause: error,
  });
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

function changeOf(
  sessionId: string,
  sequence: bigint,
  kind: string,
  name: string,
  version: string,
  encoded: Uint8Array,
): VariableChange {
  const result: VariableMutationResult =
    kind === "s"
      ? { kind: "set", variable: pb.Variable.decode(encoded), bytes: encoded.length }
      : { kind: "deleted", version: BigInt(version) };
  return { sessionId, name, sequence, result };
}

/** A change as COMMIT publishes it: "<sequence>|<kind>|<version>|<name>|<encoded variable>". */
function publishedChange(sessionId: string, message: Buffer): VariableChange {
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < 4; i++) {
    const end = message.indexOf(0x7c, start);
    fields.push(message.toString("latin1", start, end));
    start = end + 1;
  }
  const [sequence = "0", kind = "", version = "0", name = ""] = fields;
  return changeOf(sessionId, BigInt(sequence), kind, name, version, message.subarray(start));
}

/** A change as COMMIT logs it: entry "<sequence>-0" with fields k, n, v, b. */
function logChange(sessionId: string, id: string, fields: Buffer[]): VariableChange {
  const byName = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) byName.set(String(fields[i]), fields[i + 1] as Buffer);
  return changeOf(
    sessionId,
    BigInt(id.slice(0, id.indexOf("-"))),
    String(byName.get("k")),
    String(byName.get("n")),
    String(byName.get("v")),
    byName.get("b") ?? Buffer.alloc(0),
  );
}
