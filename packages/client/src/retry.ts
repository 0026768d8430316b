/**
 * The retry policy shared by the TypeScript and Python clients: which failures are
 * worth another attempt, and how long to wait first.
 *
 * - Transport failures UNAVAILABLE and DEADLINE_EXCEEDED, and an in-band Unavailable
 *   (Redis unreachable, a worker or node that died; not one whose details.retriable is
 *   "false"): exponential backoff (1 s, 2 s, 4 s, ...). Every attempt carries the same
 *   request id, so the host answers a call that already completed with its recorded
 *   outcome instead of running the tool again (docs/replay.md): any tool is retried.
 * - RateLimitExceeded / ConcurrencyLimitExceeded: the host refused the call before the
 *   tool ran: after the host's retry_after_ms when it sent one, else a longer backoff
 *   (10 s, 20 s, ...) / the exponential one.
 * - Everything else (tool logic errors, validation, timeouts of the tool itself): never.
 *
 * A SessionNotFound (the host restarted on the memory store) is answered once per call by
 * re-creating the session under the same id; when it came back empty the caller is told
 * (onSessionRecreated, else a SessionNotFound with details.recreated "true"), never silently.
 */
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType } from "@toolbridge/core";

export interface BackoffPolicy {
  /** First wait after a transient transport failure; 1 s by default. */
  initialMs: number;
  /** Each later wait is this many times the previous one; 2 by default. */
  multiplier: number;
  /** No single wait exceeds this. */
  maxMs: number;
  /** Wait after the n-th RateLimitExceeded without a retry-after is n times this; 10 s by default. */
  rateLimitMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  initialMs: 1000,
  multiplier: 2,
  maxMs: 30_000,
  rateLimitMs: 10_000,
});

export interface RetryOptions {
  /** Attempts in all, the first included (default 3, as Python's max_attempts). */
  maxAttempts?: number;
  backoff?: Partial<BackoffPolicy>;
  /**
   * On SessionNotFound (the host restarted and lost its in-memory sessions), re-create the
   * session under the same id, once per call. Default true. When the host had to create it
   * anew, its variables and agents are gone: `onSessionRecreated` is told and the call goes
   * on, or without it the call fails with SessionNotFound (details.recreated "true").
   */
  recoverSession?: boolean;
  /** Told when the session came back empty after a host restart; the call then goes on. */
  onSessionRecreated?: (event: SessionRecreated) => void;
  /** Called before each wait, e.g. to log it. */
  onRetry?: (event: RetryEvent) => void;
}

/** The session was lost by the host and re-created empty under the same id. */
export interface SessionRecreated {
  readonly sessionId: string;
}

/** The error of a call that was not made because its session came back empty (no onSessionRecreated). */
export function sessionRecreatedError(sessionId: string): BridgeError {
  return new BridgeError(
    ErrorType.SessionNotFound,
    `the host had lost session '${sessionId}' (it restarted on the memory store, or the session expired); ` +
      "it was re-created empty under the same id, so its variables and agent records are gone. The call " +
      "was not made: restore what you need and call again (pass onSessionRecreated to be told and go on instead)",
    { details: { session_id: sessionId, recreated: "true" } },
  );
}

export interface RetryEvent {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: BridgeError;
}

const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
]);

/** True for a transport failure, or an in-band Unavailable, that another attempt may get past. */
export function isTransientTransportError(error: unknown): error is BridgeError {
  if (!(error instanceof BridgeError)) return false;
  if (error.type === ErrorType.Unavailable) return error.details.retriable !== "false";
  return (
    error.type === ErrorType.CommunicationError &&
    error.grpcCode !== undefined &&
    TRANSIENT_CODES.has(error.grpcCode)
  );
}

/**
 * How long to wait before attempt `attempt + 1` after `error` ended attempt `attempt`
 * (from 0), or undefined when the error must not be retried.
 */
export function retryDelay(error: unknown, attempt: number, policy: BackoffPolicy): number | undefined {
  const exponential = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** attempt);
  if (isTransientTransportError(error)) return exponential;
  if (!(error instanceof BridgeError)) return undefined;
  if (error.type === ErrorType.RateLimitExceeded) {
    const hinted = Number(error.details.retry_after_ms);
    if (Number.isFinite(hinted) && hinted > 0) return hinted;
    return Math.min(policy.maxMs, policy.rateLimitMs * (attempt + 1));
  }
  if (error.type === ErrorType.ConcurrencyLimitExceeded) return exponential;
  return undefined;
}

export function backoffPolicy(overrides: Partial<BackoffPolicy> = {}): BackoffPolicy {
  const policy = { ...DEFAULT_BACKOFF, ...overrides };
  for (const [key, value] of Object.entries(policy)) {
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new BridgeError(ErrorType.ValidationError, `backoff.${key} must be a finite number >= 0`);
    }
  }
  return policy;
}

/** Waits `ms`, or rejects with a Cancelled BridgeError as soon as `signal` fires. */
export async function backoffSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal === undefined ? {} : { signal });
  } catch (error) {
    throw new BridgeError(ErrorType.Cancelled, "the call was cancelled while waiting to retry", {
      cause: error,
    });
  }
}

export interface RetryHooks {
  /** Re-creates the session after SessionNotFound; resolves true when the host created it anew (empty). */
  recoverSession: () => Promise<boolean>;
  /** The session's id, for what the caller is told when it came back empty. */
  sessionId: string;
  signal?: AbortSignal | undefined;
}

/**
 * Runs `call` under the retry policy. Each pass of the loop either returns, throws, or
 * counts a failed attempt (at most `maxAttempts`); the session is re-created at most once
 * per call, so the loop is bounded by maxAttempts + 1 passes.
 */
export async function withRetry<T>(
  call: () => Promise<T>,
  options: RetryOptions,
  hooks: RetryHooks,
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 3;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new BridgeError(ErrorType.ValidationError, "maxAttempts must be an integer >= 1");
  }
  const policy = backoffPolicy(options.backoff);
  const recover = options.recoverSession ?? true;
  let failures = 0;
  let needsRecovery = false;
  let recovered = false;
  for (;;) {
    try {
      if (needsRecovery) {
        const recreated = await hooks.recoverSession();
        needsRecovery = false;
        if (recreated) {
          if (options.onSessionRecreated === undefined) throw sessionRecreatedError(hooks.sessionId);
          options.onSessionRecreated({ sessionId: hooks.sessionId });
        }
      }
      return await call();
    } catch (error) {
      if (error instanceof BridgeError && error.details.recreated === "true") throw error;
      // Only once per call: a SessionNotFound after (or while) re-creating it is final.
      if (recover && !recovered && error instanceof BridgeError && error.type === ErrorType.SessionNotFound) {
        recovered = true;
        needsRecovery = true;
        continue;
      }
      failures++;
      const delay = retryDelay(error, failures - 1, policy);
      if (delay === undefined || failures >= maxAttempts) throw error;
      options.onRetry?.({ attempt: failures, delayMs: delay, error: error as BridgeError });
      await backoffSleep(delay, hooks.signal);
    }
  }
}
