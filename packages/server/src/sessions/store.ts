import { BridgeError, ErrorType, type pb } from "@toolbridge/core";

/**
 * SessionStore: where sessions and their variables live. The in-memory store is the embedded default;
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

/** What a variable mutation sees of the session, read atomically with the write. */
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
}

export type VariableMutationResult =
  | { readonly kind: "set"; readonly variable: pb.Variable }
  /** Delete the variable; `version` is the version the deletion commits as. */
  | { readonly kind: "deleted"; readonly version: bigint };

/**
 * Decides a write from the slot (variables/semantics.ts). It must be pure: a store may
 * call it again when a concurrent write got in first. Throwing leaves the variable as it was.
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

export interface VariableFilter {
  readonly prefix?: string;
  /** Only these names (all when omitted or empty). */
  readonly names?: ReadonlySet<string>;
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
   * Registers a listener told about every committed change, synchronously and in commit
   * order per session (watches rely on both).
   */
  onVariableChanged(listener: (change: VariableChange) => void): void;
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
