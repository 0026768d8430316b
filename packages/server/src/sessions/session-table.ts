/**
 * SessionTable: the part of a session store that keeps the sessions themselves: their
 * metadata and owner, their sliding expiry, the limits on how many live at once, and the
 * news of their end. Every other part of the store keeps its data inside a session and
 * drops it when the session ends.
 */

/** UTF-8 bytes of a session's metadata keys and values: what maxSessionMetadataBytes bounds. */
export function metadataBytes(metadata: Readonly<Record<string, string>>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(metadata))
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
}

export interface SessionRecord {
  readonly id: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Epoch milliseconds of the last use; the session expires `timeoutMs` after it. */
  readonly lastAccessedAt: number;
  /** The principal that created the session; no other principal may use it (auth/principal.ts). */
  readonly owner: string;
}

/** The owner of sessions stored before sessions had owners: they were created without authentication. */
export const LEGACY_OWNER = "@anonymous";

export interface CreateOptions {
  /** The principal that owns the session if this call creates it. */
  readonly owner: string;
  /**
   * Attach to a live session of any owner (the host's own principal). Without it, a live
   * session of another owner is refused with SessionNotFound (sessionUnavailable).
   */
  readonly anyOwner?: boolean;
  /**
   * Refuse with SessionLimitExceeded when `owner` already owns this many live sessions;
   * 0 or omitted: no such limit. The count holds across every node sharing the store.
   */
  readonly maxPerOwner?: number;
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

/** Which sessions SessionTable.listSessions returns. */
export interface SessionQuery {
  /** Only ids after this one (in code unit order); "" from the first. */
  readonly after: string;
  /** At most this many. */
  readonly limit: number;
  /** Only the sessions this principal owns. */
  readonly owner?: string;
}

export interface SessionPage {
  /** In id order (code unit order). */
  readonly sessions: readonly SessionRecord[];
  /** Whether more sessions follow the last one. */
  readonly more: boolean;
}

/**
 * The sessions of a store. Every method is async, since a shared store keeps them in
 * another process, and one that cannot reach it throws BridgeError(Unavailable) naming it.
 */
export interface SessionTable {
  /**
   * Creates the session owned by `options.owner`, or attaches to a live one with the same
   * id (refreshing it) when that owner owns it (any owner with `anyOwner`). Throws
   * SessionNotFound for a live session of another owner, SessionLimitExceeded at a limit.
   */
  create(
    id: string,
    metadata: Record<string, string>,
    now: number,
    options: CreateOptions,
  ): Promise<CreateResult>;
  /** The live session, without refreshing it; undefined when unknown or expired. */
  get(id: string, now: number): Promise<SessionRecord | undefined>;
  /** The live session after refreshing its TTL; undefined when unknown or expired. */
  touch(id: string, now: number): Promise<SessionRecord | undefined>;
  /**
   * Removes the session and everything the store keeps in it; false when it did not exist,
   * or when `owner` is given and the session belongs to another (it then stays).
   */
  delete(id: string, reason: SessionEndReason, owner?: string): Promise<boolean>;
  /** Number of live sessions. */
  count(): Promise<number>;
  /**
   * A page of live sessions (neither ended nor expired at `now`) in id order, for
   * ListSessions. Its cost may grow with the number of live sessions (they are read to be
   * sorted), not only with the page.
   */
  listSessions(query: SessionQuery, now: number): Promise<SessionPage>;
  /** Removes every expired session. */
  sweep(now: number): Promise<void>;
  /** Registers a listener told about every session that ends, whatever ended it. */
  onSessionEnded(listener: (event: SessionEnded) => void): void;
}
