/**
 * The errors every session store throws, so that both stores (and a store of your own)
 * answer the same situation with the same type, details and advice.
 */
import { BridgeError, ErrorType } from "@toolbridge/core";

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
