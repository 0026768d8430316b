import { BridgeError, ErrorType } from "@toolbridge/core";
import type {
  CreateResult,
  SessionEnded,
  SessionEndReason,
  SessionRecord,
  SessionStore,
  SessionStoreOptions,
} from "./store.js";

interface Entry {
  id: string;
  metadata: Readonly<Record<string, string>>;
  createdAt: number;
  lastAccessedAt: number;
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

  constructor(private readonly options: SessionStoreOptions) {}

  async create(id: string, metadata: Record<string, string>, now: number): Promise<CreateResult> {
    const existing = this.live(id, now);
    if (existing !== undefined) {
      return { record: this.refresh(existing, now), created: false };
    }
    if (this.sessions.size >= this.options.maxSessions) {
      await this.sweep(now);
      if (this.sessions.size >= this.options.maxSessions) {
        throw new BridgeError(
          ErrorType.SessionLimitExceeded,
          `the host already has ${this.sessions.size} sessions, its limit (maxConcurrentSessions); ` +
            "clean up unused sessions or raise the limit",
          { details: { limit: String(this.options.maxSessions) } },
        );
      }
    }
    const entry: Entry = {
      id,
      metadata: Object.keys(metadata).length === 0 ? NO_METADATA : Object.freeze({ ...metadata }),
      createdAt: now,
      lastAccessedAt: now,
    };
    this.sessions.set(id, entry);
    return { record: { ...entry }, created: true };
  }

  async get(id: string, now: number): Promise<SessionRecord | undefined> {
    const entry = this.live(id, now);
    return entry === undefined ? undefined : { ...entry };
  }

  async touch(id: string, now: number): Promise<SessionRecord | undefined> {
    const entry = this.live(id, now);
    return entry === undefined ? undefined : this.refresh(entry, now);
  }

  async delete(id: string, reason: SessionEndReason): Promise<boolean> {
    if (!this.sessions.delete(id)) return false;
    this.emit({ id, reason });
    return true;
  }

  async count(): Promise<number> {
    return this.sessions.size;
  }

  async sweep(now: number): Promise<void> {
    for (const entry of this.sessions.values()) {
      if (!this.expired(entry, now)) break;
      this.sessions.delete(entry.id);
      this.emit({ id: entry.id, reason: "expired" });
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

  /** The entry if it exists and has not expired; an expired one is removed on sight. */
  private live(id: string, now: number): Entry | undefined {
    const entry = this.sessions.get(id);
    if (entry === undefined) return undefined;
    if (this.expired(entry, now)) {
      this.sessions.delete(id);
      this.emit({ id, reason: "expired" });
      return undefined;
    }
    return entry;
  }

  private refresh(entry: Entry, now: number): SessionRecord {
    entry.lastAccessedAt = now;
    // Re-insertion keeps the Map in last-access order for sweep().
    this.sessions.delete(entry.id);
    this.sessions.set(entry.id, entry);
    return { ...entry };
  }

  private expired(entry: Entry, now: number): boolean {
    return now - entry.lastAccessedAt >= this.options.timeoutMs;
  }

  private emit(event: SessionEnded): void {
    for (const listener of this.listeners) listener(event);
  }
}
