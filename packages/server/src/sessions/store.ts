import { BridgeError, ErrorType, type pb } from "@toolbridge/core";

/**
 * SessionStore: where sessions and their variables live. The in-memory store is the
 * embedded default; the Redis store implements the same interface so several host
 * nodes serve one set of sessions. Every method is async for that reason, and a store
 * that cannot reach its backend throws BridgeError(Unavailable) naming it.
 */

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

/** How long and how many call outcomes a session keeps for replay (docs/replay.md). */
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

/** The call record limits of a store's options, every default filled in. */
export function callRecordLimits(options: SessionStoreOptions): Required<CallRecordLimits> {
  const given = options.callRecords ?? DEFAULT_CALL_RECORDS;
  return {
    windowMs: given.windowMs,
    maxRecords: given.maxRecords,
    maxBytes: given.maxBytes ?? DEFAULT_CALL_RECORDS.maxBytes,
  };
}

/** What the memory store counts for a record beyond its outcome and request id (its claim's node, its time). */
export const RECORD_OVERHEAD_BYTES = 64;

/**
 * What a session knows of a request id when a call claims it (SessionStore.claimCall):
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

/**
 * What a variable mutation sees of the session. A store commits the mutation's result
 * only while this is still current: the same version of the variable, or, when it did
 * not exist, still no variable of that name, the same floor, and fewer variables than
 * the result's maxVariables (at most `count` when it gives none).
 */
export interface VariableSlot {
  /** The variable as it is now, undefined when it does not exist. */
  readonly current: pb.Variable | undefined;
  /**
   * For a variable that does not exist: every version this name had before (it was
   * deleted) is at most this, so a re-created variable starts above it and a version
   * never names two different values of one name. 0 for a name never used.
   */
  readonly versionFloor: bigint;
  /** Number of variables the session holds. */
  readonly count: number;
  /** Encoded bytes of all the session's variables. */
  readonly bytes: number;
  /** Encoded bytes of `current` (0 when it does not exist). */
  readonly currentBytes: number;
  /**
   * For a store that keeps sessions in this process (the memory store): encoded bytes of
   * every variable in it and of every session's metadata, what a write is refused beyond
   * (maxTotalVariableBytes; the history and records it drops as needed are not in it).
   * Undefined for a store that keeps them elsewhere.
   */
  readonly storeBytes?: number;
}

export type VariableMutationResult =
  | {
      readonly kind: "set";
      readonly variable: pb.Variable;
      /**
       * For a result that creates the variable: commit only while the session holds fewer
       * variables than this (the limit the mutation checked `count` against), so that a
       * store need not insist on the exact `count` it read while other names are created.
       */
      readonly maxVariables?: number;
      /** The encoded size of `variable` (pb.Variable), which the session's byte count goes up by. */
      readonly bytes: number;
      /**
       * For a result that grows the session: commit only while the session's variables
       * then stay within this many bytes (the limit the mutation checked `bytes` against).
       */
      readonly maxSessionBytes?: number;
    }
  /** Delete the variable; `version` is the version the deletion commits as. */
  | { readonly kind: "deleted"; readonly version: bigint };

/**
 * Decides a write from the slot (variables/semantics.ts). It must be pure: a store may
 * call it several times, with a slot that a concurrent write made stale, and commits
 * only a result computed from the current slot. Throwing (from the current slot)
 * leaves the variable as it was and rejects the mutation with that error.
 */
export type VariableMutation = (slot: VariableSlot) => VariableMutationResult;

/** A committed variable change, as variable listeners receive it. */
export interface VariableChange {
  readonly sessionId: string;
  readonly name: string;
  /** Position in the session's sequence of changes; increases with every commit. */
  readonly sequence: bigint;
  readonly result: VariableMutationResult;
}

export interface VariableSnapshot {
  /** Sorted by name. */
  readonly variables: readonly pb.Variable[];
  /** The sequence of the last change the snapshot includes. */
  readonly sequence: bigint;
}

/** A session's changes being delivered to the variable listeners (SessionStore.follow). */
export interface Following {
  /** Every change with a higher sequence than this is delivered. */
  readonly sequence: bigint;
  /** Stops this follower; the store stops delivering once no follower of the session is left. */
  close(): void;
}

/** The retained changes of a session after a given sequence (SessionStore.changesSince). */
export interface ChangeHistory {
  /** In commit order, without gap, starting right after the requested sequence. */
  readonly changes: readonly VariableChange[];
  /** The sequence of the last change committed when they were read. */
  readonly sequence: bigint;
}

/**
 * What a store that keeps sessions in this process holds for all of them, in encoded bytes
 * (SessionStore.usage): the quantities maxTotalVariableBytes bounds.
 */
export interface StoreUsage {
  /** Session ids and metadata. */
  readonly sessions: number;
  readonly variables: number;
  /** Changes kept for resuming watches. */
  readonly history: number;
  /** Call outcomes kept for replay. */
  readonly records: number;
  /** Names of deleted variables with their last versions. */
  readonly deleted: number;
}

export interface VariableFilter {
  readonly prefix?: string;
  /** Only these names (all when omitted or empty). */
  readonly names?: ReadonlySet<string>;
}

export interface SessionStore {
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
   * Removes the session; false when it did not exist, or when `owner` is given and the
   * session belongs to another (it then stays).
   */
  delete(id: string, reason: SessionEndReason, owner?: string): Promise<boolean>;
  /** Number of live sessions. */
  count(): Promise<number>;
  /** Removes every expired session. */
  sweep(now: number): Promise<void>;
  /** Registers a listener told about every session that ends, whatever ended it. */
  onSessionEnded(listener: (event: SessionEnded) => void): void;
  close(): Promise<void>;
  /** What the store keeps in this process, for a store that keeps sessions here (metrics). */
  usage?(): StoreUsage;

  // Session variables: they live inside their session and go when it ends. Every method
  // throws SessionNotFound (sessionNotFound()) when the session is unknown or expired;
  // none of them refreshes the session's TTL.

  /** The variable, or undefined when the session has none of that name. */
  getVariable(sessionId: string, name: string, now: number): Promise<pb.Variable | undefined>;
  /** The session's variables (filtered) and the sequence they are current at, read atomically. */
  listVariables(sessionId: string, filter: VariableFilter, now: number): Promise<VariableSnapshot>;
  countVariables(sessionId: string, now: number): Promise<number>;
  /**
   * Reads the variable's slot, applies `mutation` and commits its result atomically with
   * respect to every other mutation of the session, then tells variable listeners.
   */
  mutateVariable(
    sessionId: string,
    name: string,
    mutation: VariableMutation,
    now: number,
  ): Promise<VariableChange>;
  /**
   * Registers a listener told about the committed changes of (at least) every followed
   * session (follow()), whichever node committed them: in commit order per session, without
   * gap or duplicate (watches rely on this). A change committed through this store
   * object reaches the listeners before its mutateVariable resolves, when the session
   * is followed and no earlier change is still on its way.
   */
  onVariableChanged(listener: (change: VariableChange) => void): void;
  /**
   * Starts telling the variable listeners about the session's changes until the returned
   * Following is closed or the session ends. Throws SessionNotFound.
   */
  follow(sessionId: string, now: number): Promise<Following>;
  /**
   * Registers a listener told when the store can no longer deliver a followed session's
   * changes without a gap (it lost its connection to a shared backend). The session is
   * no longer followed; watchers can resume from the last sequence they saw.
   */
  onFollowLost(listener: (sessionId: string, error: BridgeError) => void): void;
  /**
   * The changes after `after`, for resuming a watch. Throws SessionNotFound, and
   * ResourceExhausted (details.reason "history_trimmed") when some of them are no longer
   * kept, or ValidationError when `after` is beyond the session's last change.
   */
  changesSince(sessionId: string, after: bigint, now: number): Promise<ChangeHistory>;

  // Call records: the outcomes of completed calls by request id, so that a retried call is
  // answered with its first outcome instead of running again (tools/replay.ts). They live
  // in the session and go when it ends.

  /**
   * Claims `requestId` in the session for `claim.node`, unless the session holds a
   * recorded outcome for it (within the window) or a claim that still stands (before its
   * `until`, and its node, this one included, not named by `takeOverFrom`): then "reused"
   * when that record or claim has another fingerprint than `claim.fingerprint`. Throws
   * SessionNotFound.
   */
  claimCall(sessionId: string, requestId: string, claim: CallClaimRequest, now: number): Promise<CallClaim>;
  /**
   * Settles `node`'s claim on `requestId`: records `outcome` with the claim's fingerprint (kept for the window, the
   * session's oldest records dropped beyond maxRecords or maxBytes; an outcome alone over
   * maxBytes is not kept), or with `undefined` releases the claim so that a retry runs the
   * call. A claim that is no longer `node`'s is left alone.
   */
  settleCall(
    sessionId: string,
    requestId: string,
    node: string,
    outcome: Uint8Array | undefined,
    now: number,
  ): Promise<void>;
}

/** A node in the directory: where the other nodes reach it, and whether it serves TLS there. */
export interface NodeEntry {
  readonly address: string;
  readonly tls: boolean;
}

/**
 * A store several host nodes share (the Redis store): beyond SessionStore it counts rate
 * limits for all of them and keeps the directory of nodes and of the session tools each
 * one serves, so that a call reaching one node can be forwarded to another (docs/stores.md).
 */
export interface SharedSessionStore extends SessionStore {
  /** This node's name, unique among the nodes sharing the store. */
  readonly nodeId: string;
  /** Counts a start of `tool` against `limit` per minute: 0 when admitted, else ms until a slot frees. */
  takeRateSlot(tool: string, limit: number): Promise<number>;
  /** Lists this node (its gRPC address and transport) in the directory, and keeps it there while it runs. */
  advertise(entry: NodeEntry): Promise<void>;
  /** Takes this node out of the directory. */
  withdraw(): Promise<void>;
  /** A node's entry in the directory; undefined when it is gone. */
  nodeEntry(node: string): Promise<NodeEntry | undefined>;
  /** The token the nodes forward calls to each other with (made by the first node that asks). */
  peerToken(): Promise<string>;
  /** Lists a tool of one session (its encoded ToolSpec) as served by this node. */
  publishSessionTool(sessionId: string, name: string, spec: Uint8Array): Promise<void>;
  withdrawSessionTool(sessionId: string, name: string): Promise<void>;
  /** The session tools of every node, by name. */
  sessionTools(
    sessionId: string,
  ): Promise<ReadonlyMap<string, { readonly node: string; readonly spec: Uint8Array }>>;
}

/** Whether a store is shared by several nodes (SharedSessionStore). */
export function isShared(store: SessionStore): store is SharedSessionStore {
  return typeof (store as Partial<SharedSessionStore>).advertise === "function";
}

/** The error of changesSince when the changes after `after` are no longer all kept. */
export function historyTrimmed(sessionId: string, after: bigint, oldest: bigint): BridgeError {
  return new BridgeError(
    ErrorType.ResourceExhausted,
    `cannot resume the watch of session '${sessionId}' after change ${after}: the session keeps only ` +
      "its latest changes (watchHistory of them, in what its variables leave of maxSessionVariableBytes) " +
      `and the oldest kept is ${oldest}; watch again with initial values`,
    { details: { reason: "history_trimmed", session_id: sessionId, oldest: String(oldest) } },
  );
}

/** The error of changesSince when `after` is beyond the session's last change. */
export function resumeAhead(sessionId: string, after: bigint, sequence: bigint): BridgeError {
  return new BridgeError(
    ErrorType.ValidationError,
    `cannot resume the watch of session '${sessionId}' after change ${after}: its last change is ` +
      `${sequence} (was the session ended and created again?); watch again with initial values`,
    { details: { field: "resume_after_sequence", session_id: sessionId, sequence: String(sequence) } },
  );
}

/**
 * The error of InitializeSession for an id in use by another principal. It is
 * SessionNotFound, as every other RPC on that session answers, and its message names no
 * owner: the caller learns only that this id is not available to it.
 */
export function sessionUnavailable(id: string): BridgeError {
  return new BridgeError(
    ErrorType.SessionNotFound,
    `session '${id.slice(0, 200)}' cannot be created or joined with your credentials; use another ` +
      "session id, or an empty one to let the host pick a fresh id",
    { details: { session_id: id.slice(0, 200) } },
  );
}

/**
 * The SessionLimitExceeded error of a store at its limit of live sessions (maxConcurrentSessions);
 * `held` says whose sessions those are and how many, e.g. "the host already has 5 sessions, its limit".
 */
export function sessionLimitReached(held: string, max: number): BridgeError {
  return new BridgeError(
    ErrorType.SessionLimitExceeded,
    `${held} (maxConcurrentSessions); clean up unused sessions or raise the limit`,
    { details: { quota: "maxConcurrentSessions", limit: String(max) } },
  );
}

/** The error of create() when an owner already owns `max` live sessions. */
export function ownerLimitReached(owner: string, owned: number, max: number): BridgeError {
  return new BridgeError(
    ErrorType.SessionLimitExceeded,
    `principal '${owner.slice(0, 100)}' already owns ${owned} live sessions, its limit ` +
      "(maxSessionsPerPrincipal); clean up sessions you no longer use, or ask for a higher limit",
    { details: { quota: "maxSessionsPerPrincipal", limit: String(max) } },
  );
}

/** The SessionNotFound error every store and the session manager throw. */
export function sessionNotFound(id: string): BridgeError {
  const shown = id === "" ? "(empty id)" : `'${id.slice(0, 200)}'`;
  return new BridgeError(
    ErrorType.SessionNotFound,
    `session ${shown} does not exist or has expired; call InitializeSession first`,
    { details: { session_id: id.slice(0, 200) } },
  );
}
