/**
 * The memory store's sessions as all its parts see them: one entry per live session holding
 * everything kept in it (its variables and claims here, its history, records and deleted
 * names through Retention), the byte counts that maxTotalVariableBytes bounds, and the end
 * of a session, which every part's data goes with.
 */
import type { pb } from "@toolbridge/core";
import { callRecordLimits } from "../call-records.js";
import { sessionNotFound } from "../errors.js";
import { DEFAULT_MAX_SESSION_BYTES, DEFAULT_WATCH_HISTORY, type SessionStoreOptions } from "../options.js";
import type { SessionEnded, SessionEndReason } from "../session-table.js";
import type { StoreUsage } from "../store.js";
import { type Keeping, Retention } from "./retention.js";

export interface SessionEntry extends Keeping {
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

export class MemorySessionState {
  /**
   * Kept in last-access order (a touch moves the entry to the end), so a sweep stops at
   * the first live entry and costs only as much as there is to remove.
   */
  readonly entries = new Map<string, SessionEntry>();
  /** Live sessions per owner, for CreateOptions.maxPerOwner. */
  readonly owned = new Map<string, number>();
  /** History, records and deleted names of every session: what the total drops first. */
  readonly retained: Retention;
  readonly maxTotalBytes: number;
  readonly callRecords: ReturnType<typeof callRecordLimits>;
  /** Encoded bytes of every session's variables. */
  variableBytes = 0;
  /** UTF-8 bytes of every session's id and metadata. */
  sessionBytes = 0;
  private readonly endedListeners: ((event: SessionEnded) => void)[] = [];

  constructor(readonly options: SessionStoreOptions) {
    this.maxTotalBytes = options.maxTotalBytes ?? 0;
    this.callRecords = callRecordLimits(options.callRecords);
    this.retained = new Retention({
      historySize: options.watchHistory ?? DEFAULT_WATCH_HISTORY,
      maxSessionBytes: options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES,
      maxTotalBytes: this.maxTotalBytes,
      records: this.callRecords,
    });
  }

  /** Encoded bytes of every variable and every session's id and metadata: what writes are refused beyond. */
  get pinnedBytes(): number {
    return this.variableBytes + this.sessionBytes;
  }

  usage(): StoreUsage {
    return { sessions: this.sessionBytes, variables: this.variableBytes, ...this.retained.usage() };
  }

  /** The live entry; throws SessionNotFound when it does not exist or has expired. */
  require(id: string, now: number): SessionEntry {
    const entry = this.live(id, now);
    if (entry === undefined) throw sessionNotFound(id);
    return entry;
  }

  /** The entry if it exists and has not expired; an expired one is removed on sight. */
  live(id: string, now: number): SessionEntry | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (this.expired(entry, now)) {
      this.remove(entry, "expired");
      return undefined;
    }
    return entry;
  }

  expired(entry: SessionEntry, now: number): boolean {
    return now - entry.lastAccessedAt >= this.options.timeoutMs;
  }

  /** Ends the session: everything kept in it goes, and the end listeners are told. */
  remove(entry: SessionEntry, reason: SessionEndReason): void {
    this.entries.delete(entry.id);
    this.variableBytes -= entry.bytes;
    this.sessionBytes -= entry.ownBytes;
    this.retained.release(entry);
    const owned = (this.owned.get(entry.owner) ?? 1) - 1;
    if (owned > 0) this.owned.set(entry.owner, owned);
    else this.owned.delete(entry.owner);
    const event: SessionEnded = { id: entry.id, reason };
    for (const listener of this.endedListeners) listener(event);
  }

  onEnded(listener: (event: SessionEnded) => void): void {
    this.endedListeners.push(listener);
  }
}
