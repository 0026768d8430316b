/**
 * SessionStore: where sessions live. The in-memory store is the embedded default;
 * a shared store (Redis) implements the same interface so several host nodes can
 * serve one set of sessions. Every method is async for that reason.
 */

export interface SessionRecord {
  readonly id: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Epoch milliseconds of the last use; the session expires `timeoutMs` after it. */
  readonly lastAccessedAt: number;
}

export type SessionEndReason = "cleanup" | "expired" | "shutdown";

export interface SessionEnded {
  readonly id: string;
  readonly reason: SessionEndReason;
}

export interface CreateResult {
  readonly record: SessionRecord;
  /** False when a live session with this id existed and the call attached to it. */
  readonly created: boolean;
}

export interface SessionStoreOptions {
  /** Sliding TTL of a session. */
  readonly timeoutMs: number;
  /** More live sessions than this and create() fails with SessionLimitExceeded. */
  readonly maxSessions: number;
}

export interface SessionStore {
  /** Creates the session, or attaches to a live one with the same id (refreshing it). */
  create(id: string, metadata: Record<string, string>, now: number): Promise<CreateResult>;
  /** The live session, without refreshing it; undefined when unknown or expired. */
  get(id: string, now: number): Promise<SessionRecord | undefined>;
  /** The live session after refreshing its TTL; undefined when unknown or expired. */
  touch(id: string, now: number): Promise<SessionRecord | undefined>;
  /** Removes the session; false when it did not exist. */
  delete(id: string, reason: SessionEndReason): Promise<boolean>;
  /** Number of live sessions. */
  count(): Promise<number>;
  /** Removes every expired session. */
  sweep(now: number): Promise<void>;
  /** Registers a listener told about every session that ends, whatever ended it. */
  onSessionEnded(listener: (event: SessionEnded) => void): void;
  close(): Promise<void>;
}
