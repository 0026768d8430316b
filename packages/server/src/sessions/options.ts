/** What both stores are configured with, and the defaults and fixed bounds they share. */
import type { CallRecordLimits } from "./call-records.js";

export interface SessionStoreOptions {
  /** Sliding TTL of a session. */
  readonly timeoutMs: number;
  /** More live sessions than this and create() fails with SessionLimitExceeded. */
  readonly maxSessions: number;
  /**
   * How many of a session's latest changes are kept so that a watch can resume after
   * them (changesSince); 0 keeps none. Defaults to DEFAULT_WATCH_HISTORY.
   */
  readonly watchHistory?: number;
  /**
   * Encoded bytes one session's variables and the changes kept for resuming its watches may
   * take together (maxSessionVariableBytes): the history keeps only what the variables leave
   * of this, dropping its oldest changes first. Defaults to DEFAULT_MAX_SESSION_BYTES.
   */
  readonly maxSessionBytes?: number;
  /**
   * For a store that keeps sessions in this process (the memory store): encoded bytes of
   * everything it keeps for all sessions (maxTotalVariableBytes), the variables and session
   * metadata a write or create is refused beyond, plus the history, call records and deleted
   * names it drops oldest first to stay within. 0: no such limit (the default).
   */
  readonly maxTotalBytes?: number;
  /** How long, how many and how many bytes of call outcomes a session keeps for replay; DEFAULT_CALL_RECORDS when omitted. */
  readonly callRecords?: CallRecordLimits;
}

/** Changes kept per session for resuming watches when SessionStoreOptions.watchHistory is not given. */
export const DEFAULT_WATCH_HISTORY = 1000;

/** SessionStoreOptions.maxSessionBytes when not given: the host's default maxSessionVariableBytes. */
export const DEFAULT_MAX_SESSION_BYTES = 64 * 1024 * 1024;

/**
 * Deleted names every store remembers per session (so that a re-created name continues
 * above its last version); beyond this the oldest fold into the session's version floor.
 */
export const MAX_TOMBSTONES = 10_000;
