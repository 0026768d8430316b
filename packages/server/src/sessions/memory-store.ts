import { BridgeError, ErrorType, type pb } from "@toolbridge/core";
import { type Keeping, Retention } from "./memory-retention.js";
import {
  type CallClaim,
  type CallClaimRequest,
  type ChangeHistory,
  type CreateOptions,
  type CreateResult,
  callRecordLimits,
  DEFAULT_MAX_SESSION_BYTES,
  DEFAULT_WATCH_HISTORY,
  type Following,
  historyTrimmed,
  ownerLimitReached,
  resumeAhead,
  type SessionEnded,
  type SessionEndReason,
  type SessionRecord,
  type SessionStore,
  type SessionStoreOptions,
  type StoreUsage,
  sessionLimitReached,
  sessionNotFound,
  sessionUnavailable,
  type VariableChange,
  type VariableFilter,
  type VariableMutation,
  type VariableSnapshot,
} from "./store.js";

interface Entry extends Keeping {
  id: string;
  owner: string;
  metadata: Readonly<Record<string, string>>;
  /** UTF-8 bytes of the id and metadata: what the session itself costs the store. */
  ownBytes: number;
  createdAt: number;
  lastAccessedAt: number;
  /** Created on the first write; dropped with the entry when the session ends. */
  variables: Map<string, pb.Variable> | undefined;
  /** Encoded size of each variable, and their sum. */
  sizes: Map<string, number> | undefined;
  bytes: number;
  sequence: bigint;
  /** Claims on request ids of calls running now (tools/replay.ts), with their calls' fingerprints. */
  claims:
    | Map<string, { readonly node: string; readonly until: number; readonly fingerprint: string }>
    | undefined;
}

const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The embedded session store. The Map is kept in last-access order (a touch moves
 * the entry to the end), so a sweep stops at the first live entry and costs only
 * as much as there is to remove.
 */
export class InMemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, Entry>();
  private readonly listeners: ((event: SessionEnded) => void)[] = [];
  private readonly variableListeners: ((change: VariableChange) => void)[] = [];
  /** Live sessions per owner, for CreateOptions.maxPerOwner. */
  private readonly owned = new Map<string, number>();
  /** Encoded bytes of every session's variables. */
  private variableBytes = 0;
  /** UTF-8 bytes of every session's id and metadata. */
  private sessionBytes = 0;
  /** History, records and deleted names of every session: what the total drops first. */
  private readonly retained: Retention;
  private readonly maxTotalBytes: number;
  private readonly callRecords: ReturnType<typeof callRecordLimits>;

  constructor(private readonly options: SessionStoreOptions) {
    this.maxTotalBytes = options.maxTotalBytes ?? 0;
    this.callRecords = callRecordLimits(options);
    this.retained = new Retention({
      historySize: options.watchHistory ?? DEFAULT_WATCH_HISTORY,
      maxSessionBytes: options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES,
      maxTotalBytes: this.maxTotalBytes,
      records: this.callRecords,
    });
  }

  async create(
    id: string,
    metadata: Record<string, string>,
    now: number,
    options: CreateOptions,
  ): Promise<CreateResult> {
    const { owner } = options;
    const existing = this.live(id, now);
    if (existing !== undefined) {
      if (existing.owner !== owner && options.anyOwner !== true) throw sessionUnavailable(id);
      return { record: this.refresh(existing, now), created: false };
    }
    if (this.sessions.size >= this.options.maxSessions) {
      await this.sweep(now);
      if (this.sessions.size >= this.options.maxSessions) {
        throw sessionLimitReached(
          `the host already has ${this.sessions.size} sessions, its limit`,
          this.options.maxSessions,
        );
      }
    }
    const maxPerOwner = options.maxPerOwner ?? 0;
    if (maxPerOwner > 0 && (this.owned.get(owner) ?? 0) >= maxPerOwner) {
      await this.sweep(now);
      const owned = this.owned.get(owner) ?? 0;
      if (owned >= maxPerOwner) throw ownerLimitReached(owner, owned, maxPerOwner);
    }
    const ownBytes = metadataBytes(id, metadata);
    if (this.maxTotalBytes > 0 && this.pinnedBytes + ownBytes > this.maxTotalBytes) {
      throw storeFull(
        `a session of ${ownBytes} bytes of id and metadata`,
        this.pinnedBytes,
        this.maxTotalBytes,
      );
    }
    const entry: Entry = {
      id,
      owner,
      metadata: Object.keys(metadata).length === 0 ? NO_METADATA : Object.freeze({ ...metadata }),
      ownBytes,
      createdAt: now,
      lastAccessedAt: now,
      variables: undefined,
      sizes: undefined,
      bytes: 0,
      tombstones: undefined,
      versionFloor: 0n,
      sequence: 0n,
      history: undefined,
      claims: undefined,
      records: undefined,
      recordBytes: 0,
    };
    this.sessions.set(id, entry);
    this.sessionBytes += ownBytes;
    this.retained.fit(this.pinnedBytes);
    this.owned.set(owner, (this.owned.get(owner) ?? 0) + 1);
    return { record: record(entry), created: true };
  }

  async get(id: string, now: number): Promise<SessionRecord | undefined> {
    const entry = this.live(id, now);
    return entry === undefined ? undefined : record(entry);
  }

  async touch(id: string, now: number): Promise<SessionRecord | undefined> {
    const entry = this.live(id, now);
    return entry === undefined ? undefined : this.refresh(entry, now);
  }

  async delete(id: string, reason: SessionEndReason, owner?: string): Promise<boolean> {
    const entry = this.sessions.get(id);
    if (entry === undefined || (owner !== undefined && entry.owner !== owner)) return false;
    this.remove(entry, reason);
    return true;
  }

  async count(): Promise<number> {
    return this.sessions.size;
  }

  async sweep(now: number): Promise<void> {
    for (const entry of this.sessions.values()) {
      if (!this.expired(entry, now)) break;
      this.remove(entry, "expired");
    }
  }

  onSessionEnded(listener: (event: SessionEnded) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    for (const id of [...this.sessions.keys()]) {
      await this.delete(id, "shutdown");
    }
  }

  usage(): StoreUsage {
    return {
      sessions: this.sessionBytes,
      variables: this.variableBytes,
      ...this.retained.usage(),
    };
  }

  async getVariable(sessionId: string, name: string, now: number): Promise<pb.Variable | undefined> {
    return this.require(sessionId, now).variables?.get(name);
  }

  async listVariables(sessionId: string, filter: VariableFilter, now: number): Promise<VariableSnapshot> {
    const entry = this.require(sessionId, now);
    const prefix = filter.prefix ?? "";
    const names = filter.names !== undefined && filter.names.size > 0 ? filter.names : undefined;
    const variables: pb.Variable[] = [];
    for (const [name, variable] of entry.variables ?? []) {
      if (name.startsWith(prefix) && (names === undefined || names.has(name))) variables.push(variable);
    }
    variables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { variables, sequence: entry.sequence };
  }

  async countVariables(sessionId: string, now: number): Promise<number> {
    return this.require(sessionId, now).variables?.size ?? 0;
  }

  async mutateVariable(
    sessionId: string,
    name: string,
    mutation: VariableMutation,
    now: number,
  ): Promise<VariableChange> {
    // No await between reading the slot and committing: in one event loop that makes
    // the read-modify-write atomic, which is what expected_version relies on.
    const entry = this.require(sessionId, now);
    const current = entry.variables?.get(name);
    const versionFloor =
      current === undefined ? (entry.tombstones?.get(name)?.version ?? entry.versionFloor) : 0n;
    const currentBytes = entry.sizes?.get(name) ?? 0;
    const result = mutation({
      current,
      versionFloor,
      count: entry.variables?.size ?? 0,
      bytes: entry.bytes,
      currentBytes,
      storeBytes: this.pinnedBytes,
    });
    const delta = (result.kind === "set" ? result.bytes : 0) - currentBytes;
    entry.bytes += delta;
    this.variableBytes += delta;
    if (result.kind === "set") {
      entry.variables ??= new Map();
      entry.variables.set(name, result.variable);
      entry.sizes ??= new Map();
      entry.sizes.set(name, result.bytes);
      const tombstone = entry.tombstones?.get(name);
      if (tombstone !== undefined) this.retained.forget(tombstone);
    } else {
      entry.variables?.delete(name);
      entry.sizes?.delete(name);
      this.retained.keepTombstone(entry, name, result.version);
    }
    entry.sequence += 1n;
    const change: VariableChange = { sessionId, name, sequence: entry.sequence, result };
    this.retained.keepChange(entry, change);
    this.retained.fit(this.pinnedBytes);
    for (const listener of this.variableListeners) listener(change);
    return change;
  }

  onVariableChanged(listener: (change: VariableChange) => void): void {
    this.variableListeners.push(listener);
  }

  /** Every change of this store is committed in this process, so following costs nothing. */
  async follow(sessionId: string, now: number): Promise<Following> {
    return { sequence: this.require(sessionId, now).sequence, close: () => {} };
  }

  /** Nothing is lost between a commit and its listeners in one process. */
  onFollowLost(_listener: (sessionId: string, error: BridgeError) => void): void {}

  async changesSince(sessionId: string, after: bigint, now: number): Promise<ChangeHistory> {
    const entry = this.require(sessionId, now);
    const { sequence } = entry;
    if (after > sequence) throw resumeAhead(sessionId, after, sequence);
    const oldest = entry.history?.oldestSequence ?? 1n;
    const changes: VariableChange[] = [];
    for (let s = after + 1n; s <= sequence; s++) {
      const kept = entry.history?.get(s);
      if (kept === undefined) throw historyTrimmed(sessionId, after, oldest > s ? oldest : sequence + 1n);
      changes.push(kept.change);
    }
    return { changes, sequence };
  }

  async claimCall(
    sessionId: string,
    requestId: string,
    claim: CallClaimRequest,
    now: number,
  ): Promise<CallClaim> {
    const entry = this.require(sessionId, now);
    const record = entry.records?.get(requestId);
    if (record !== undefined && record.at > now - this.callRecords.windowMs) {
      if (record.fingerprint !== claim.fingerprint) return { state: "reused" };
      return { state: "recorded", outcome: record.outcome };
    }
    const held = entry.claims?.get(requestId);
    if (held !== undefined && held.node !== claim.takeOverFrom && held.until > now) {
      if (held.fingerprint !== claim.fingerprint) return { state: "reused" };
      return { state: "running", node: held.node, until: held.until };
    }
    entry.claims ??= new Map();
    entry.claims.set(requestId, { node: claim.node, until: claim.until, fingerprint: claim.fingerprint });
    return { state: "claimed" };
  }

  async settleCall(
    sessionId: string,
    requestId: string,
    node: string,
    outcome: Uint8Array | undefined,
    now: number,
  ): Promise<void> {
    const entry = this.live(sessionId, now);
    const held = entry?.claims?.get(requestId);
    if (entry?.claims === undefined || held?.node !== node) return;
    entry.claims.delete(requestId);
    if (outcome === undefined) return;
    this.retained.keepRecord(entry, requestId, held.fingerprint, outcome, now);
    this.retained.fit(this.pinnedBytes);
  }

  /** Encoded bytes of every variable and every session's id and metadata: what writes are refused beyond. */
  private get pinnedBytes(): number {
    return this.variableBytes + this.sessionBytes;
  }

  private require(id: string, now: number): Entry {
    const entry = this.live(id, now);
    if (entry === undefined) throw sessionNotFound(id);
    return entry;
  }

  /** The entry if it exists and has not expired; an expired one is removed on sight. */
  private live(id: string, now: number): Entry | undefined {
    const entry = this.sessions.get(id);
    if (entry === undefined) return undefined;
    if (this.expired(entry, now)) {
      this.remove(entry, "expired");
      return undefined;
    }
    return entry;
  }

  private refresh(entry: Entry, now: number): SessionRecord {
    entry.lastAccessedAt = now;
    // Re-insertion keeps the Map in last-access order for sweep().
    this.sessions.delete(entry.id);
    this.sessions.set(entry.id, entry);
    return record(entry);
  }

  private expired(entry: Entry, now: number): boolean {
    return now - entry.lastAccessedAt >= this.options.timeoutMs;
  }

  private remove(entry: Entry, reason: SessionEndReason): void {
    this.sessions.delete(entry.id);
    this.variableBytes -= entry.bytes;
    this.sessionBytes -= entry.ownBytes;
    this.retained.release(entry);
    const owned = (this.owned.get(entry.owner) ?? 1) - 1;
    if (owned > 0) this.owned.set(entry.owner, owned);
    else this.owned.delete(entry.owner);
    this.emit({ id: entry.id, reason });
  }

  private emit(event: SessionEnded): void {
    for (const listener of this.listeners) listener(event);
  }
}

function metadataBytes(id: string, metadata: Readonly<Record<string, string>>): number {
  let bytes = Buffer.byteLength(id);
  for (const [key, value] of Object.entries(metadata))
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
}

/** The error of a create the memory store's byte total (maxTotalVariableBytes) has no room for. */
function storeFull(what: string, held: number, limit: number): BridgeError {
  return new BridgeError(
    ErrorType.ResourceExhausted,
    `the host holds ${held} bytes of variables and session metadata, and ${what} would take it over its ` +
      `limit of ${limit} (maxTotalVariableBytes); retry once sessions have ended, or raise the limit`,
    { details: { quota: "maxTotalVariableBytes", limit: String(limit) } },
  );
}

function record(entry: Entry): SessionRecord {
  return {
    id: entry.id,
    metadata: entry.metadata,
    createdAt: entry.createdAt,
    lastAccessedAt: entry.lastAccessedAt,
    owner: entry.owner,
  };
}
