/**
 * VariableStore: the part of a session store that keeps the session variables and their
 * change feed: atomic read-modify-write commits, reads, the sequence of changes that
 * watches follow (on every node sharing the store) and the latest changes kept for
 * resuming them. Variables live inside their session and go when it ends.
 */
import type { BridgeError, pb } from "@toolbridge/core";

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

/** A session's changes being delivered to the change listeners (VariableStore.follow). */
export interface Following {
  /** Every change with a higher sequence than this is delivered. */
  readonly sequence: bigint;
  /** Stops this follower; the store stops delivering once no follower of the session is left. */
  close(): void;
}

/** The retained changes of a session after a given sequence (VariableStore.changesSince). */
export interface ChangeHistory {
  /** In commit order, without gap, starting right after the requested sequence. */
  readonly changes: readonly VariableChange[];
  /** The sequence of the last change committed when they were read. */
  readonly sequence: bigint;
}

export interface VariableFilter {
  readonly prefix?: string;
  /** Only these names (all when omitted or empty). */
  readonly names?: ReadonlySet<string>;
}

/**
 * The variables of the store's sessions. Every method throws SessionNotFound
 * (sessionNotFound()) when the session is unknown or expired; none of them refreshes the
 * session's TTL.
 */
export interface VariableStore {
  /** The variable, or undefined when the session has none of that name. */
  get(sessionId: string, name: string, now: number): Promise<pb.Variable | undefined>;
  /** The session's variables (filtered) and the sequence they are current at, read atomically. */
  list(sessionId: string, filter: VariableFilter, now: number): Promise<VariableSnapshot>;
  count(sessionId: string, now: number): Promise<number>;
  /**
   * Reads the variable's slot, applies `mutation` and commits its result atomically with
   * respect to every other mutation of the session, then tells the change listeners.
   */
  mutate(sessionId: string, name: string, mutation: VariableMutation, now: number): Promise<VariableChange>;
  /**
   * Registers a listener told about the committed changes of (at least) every followed
   * session (follow()), whichever node committed them: in commit order per session, without
   * gap or duplicate (watches rely on this). A change committed through this store
   * object reaches the listeners before its mutate resolves, when the session is followed
   * and no earlier change is still on its way.
   */
  onChanged(listener: (change: VariableChange) => void): void;
  /**
   * Starts telling the change listeners about the session's changes until the returned
   * Following is closed or the session ends.
   */
  follow(sessionId: string, now: number): Promise<Following>;
  /**
   * Registers a listener told when the store can no longer deliver a followed session's
   * changes without a gap (it lost its connection to a shared backend). The session is
   * no longer followed; watchers can resume from the last sequence they saw.
   */
  onFollowLost(listener: (sessionId: string, error: BridgeError) => void): void;
  /**
   * The changes after `after`, for resuming a watch. Throws ResourceExhausted
   * (details.reason "history_trimmed") when some of them are no longer kept, or
   * ValidationError when `after` is beyond the session's last change.
   */
  changesSince(sessionId: string, after: bigint, now: number): Promise<ChangeHistory>;
}
