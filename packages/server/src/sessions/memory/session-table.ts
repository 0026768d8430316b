/** The memory store's sessions: created, refreshed, counted and ended in this process. */
import { BridgeError, ErrorType } from "@toolbridge/core";
import { ownerLimitReached, sessionLimitReached, sessionUnavailable } from "../errors.js";
import {
  type CreateOptions,
  type CreateResult,
  metadataBytes,
  type SessionEnded,
  type SessionEndReason,
  type SessionPage,
  type SessionQuery,
  type SessionRecord,
  type SessionTable,
} from "../session-table.js";
import type { MemorySessionState, SessionEntry } from "./state.js";

const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});

export class MemorySessionTable implements SessionTable {
  constructor(private readonly state: MemorySessionState) {}

  async create(
    id: string,
    metadata: Record<string, string>,
    now: number,
    options: CreateOptions,
  ): Promise<CreateResult> {
    const { state } = this;
    const { owner } = options;
    const existing = state.live(id, now);
    if (existing !== undefined) {
      if (existing.owner !== owner && options.anyOwner !== true) throw sessionUnavailable(id);
      return { record: this.refresh(existing, now), created: false };
    }
    await this.checkLimits(owner, options.maxPerOwner ?? 0, now);
    const ownBytes = Buffer.byteLength(id) + metadataBytes(metadata);
    if (state.maxTotalBytes > 0 && state.pinnedBytes + ownBytes > state.maxTotalBytes) {
      throw storeFull(
        `a session of ${ownBytes} bytes of id and metadata`,
        state.pinnedBytes,
        state.maxTotalBytes,
      );
    }
    const entry: SessionEntry = {
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
    state.entries.set(id, entry);
    state.sessionBytes += ownBytes;
    state.retained.fit(state.pinnedBytes);
    state.owned.set(owner, (state.owned.get(owner) ?? 0) + 1);
    return { record: record(entry), created: true };
  }

  async get(id: string, now: number): Promise<SessionRecord | undefined> {
    const entry = this.state.live(id, now);
    return entry === undefined ? undefined : record(entry);
  }

  async touch(id: string, now: number): Promise<SessionRecord | undefined> {
    const entry = this.state.live(id, now);
    return entry === undefined ? undefined : this.refresh(entry, now);
  }

  async delete(id: string, reason: SessionEndReason, owner?: string): Promise<boolean> {
    const entry = this.state.entries.get(id);
    if (entry === undefined || (owner !== undefined && entry.owner !== owner)) return false;
    this.state.remove(entry, reason);
    return true;
  }

  async count(): Promise<number> {
    return this.state.entries.size;
  }

  async listSessions(query: SessionQuery, now: number): Promise<SessionPage> {
    const matching: SessionEntry[] = [];
    for (const entry of this.state.entries.values()) {
      if (entry.id <= query.after || this.state.expired(entry, now)) continue;
      if (query.owner === undefined || entry.owner === query.owner) matching.push(entry);
    }
    matching.sort((a, b) => (a.id < b.id ? -1 : 1));
    return {
      sessions: matching.slice(0, query.limit).map(record),
      more: matching.length > query.limit,
    };
  }

  async sweep(now: number): Promise<void> {
    for (const entry of this.state.entries.values()) {
      if (!this.state.expired(entry, now)) break;
      this.state.remove(entry, "expired");
    }
  }

  onSessionEnded(listener: (event: SessionEnded) => void): void {
    this.state.onEnded(listener);
  }

  /** Refuses a new session at the store's limit or its owner's, after sweeping the expired ones. */
  private async checkLimits(owner: string, maxPerOwner: number, now: number): Promise<void> {
    const { entries, owned, options } = this.state;
    if (entries.size >= options.maxSessions) {
      await this.sweep(now);
      if (entries.size >= options.maxSessions) {
        throw sessionLimitReached(
          `the host already has ${entries.size} sessions, its limit`,
          options.maxSessions,
        );
      }
    }
    if (maxPerOwner > 0 && (owned.get(owner) ?? 0) >= maxPerOwner) {
      await this.sweep(now);
      const count = owned.get(owner) ?? 0;
      if (count >= maxPerOwner) throw ownerLimitReached(owner, count, maxPerOwner);
    }
  }

  private refresh(entry: SessionEntry, now: number): SessionRecord {
    entry.lastAccessedAt = now;
    // Re-insertion keeps the Map in last-access order for sweep().
    this.state.entries.delete(entry.id);
    this.state.entries.set(entry.id, entry);
    return record(entry);
  }
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

function record(entry: SessionEntry): SessionRecord {
  return {
    id: entry.id,
    metadata: entry.metadata,
    createdAt: entry.createdAt,
    lastAccessedAt: entry.lastAccessedAt,
    owner: entry.owner,
  };
}
