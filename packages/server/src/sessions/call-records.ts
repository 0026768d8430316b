/**
 * CallRecordStore: the part of a session store that keeps the outcomes of completed calls
 * by request id, so that a retried call is answered with its first outcome instead of
 * running again (tools/replay.ts, docs/replay.md), and the claims of the calls running
 * under a request id now. They live in the session and go when it ends.
 */

/** How long, how many and how many bytes of call outcomes a session keeps for replay (docs/replay.md). */
export interface CallRecordLimits {
  /** A recorded outcome is replayed for this long after the call completed. */
  readonly windowMs: number;
  /** Most outcomes one session keeps; beyond this the oldest is forgotten. */
  readonly maxRecords: number;
  /**
   * Most bytes of outcomes one session keeps, each counted as its encoded outcome and its
   * request id (RECORD_OVERHEAD_BYTES more in the memory store); beyond this the oldest are
   * forgotten. Omitted: DEFAULT_CALL_RECORDS.maxBytes.
   */
  readonly maxBytes?: number;
}

/** Call records kept when SessionStoreOptions.callRecords is not given. */
export const DEFAULT_CALL_RECORDS = Object.freeze({
  windowMs: 600_000,
  maxRecords: 1000,
  maxBytes: 16 * 1024 * 1024,
});

/** Call record limits with every default filled in. */
export function callRecordLimits(given: CallRecordLimits = DEFAULT_CALL_RECORDS): Required<CallRecordLimits> {
  return {
    windowMs: given.windowMs,
    maxRecords: given.maxRecords,
    maxBytes: given.maxBytes ?? DEFAULT_CALL_RECORDS.maxBytes,
  };
}

/**
 * What a session knows of a request id when a call claims it (CallRecordStore.claim):
 * nothing (the claim is the caller's now, and it must settle it), the recorded outcome of
 * the call that completed under that id, a claim a node holds until `until`, or that the id
 * names another call (its claim or record has another fingerprint).
 */
export type CallClaim =
  | { readonly state: "claimed" }
  | { readonly state: "recorded"; readonly outcome: Uint8Array }
  | { readonly state: "running"; readonly node: string; readonly until: number }
  | { readonly state: "reused" };

/** A claim on a request id: who runs the call, and until when the claim stands without its settle. */
export interface CallClaimRequest {
  /**
   * What the call asks for (tools/replay.ts callFingerprint: lowercase hex, no '|'). Kept
   * with the claim and then with its record; a claim or record of the id with another
   * fingerprint answers "reused".
   */
  readonly fingerprint: string;
  readonly node: string;
  /** Epoch ms after which another caller may take the claim over. */
  readonly until: number;
  /** A node known to be gone: its claim is taken over whatever its `until`. */
  readonly takeOverFrom?: string;
}

/** The claims and recorded outcomes of the store's sessions, within the store's CallRecordLimits. */
export interface CallRecordStore {
  /**
   * Claims `requestId` in the session for `claim.node`, unless the session holds a
   * recorded outcome for it (within the window) or a claim that still stands (before its
   * `until`, and its node, this one included, not named by `takeOverFrom`): then "reused"
   * when that record or claim has another fingerprint than `claim.fingerprint`. Throws
   * SessionNotFound.
   */
  claim(sessionId: string, requestId: string, claim: CallClaimRequest, now: number): Promise<CallClaim>;
  /**
   * Settles `node`'s claim on `requestId`: records `outcome` with the claim's fingerprint
   * (kept for the window, the session's oldest records dropped beyond maxRecords or
   * maxBytes; an outcome alone over maxBytes is not kept), or with `undefined` releases the
   * claim so that a retry runs the call. A claim that is no longer `node`'s is left alone.
   */
  settle(
    sessionId: string,
    requestId: string,
    node: string,
    outcome: Uint8Array | undefined,
    now: number,
  ): Promise<void>;
}
