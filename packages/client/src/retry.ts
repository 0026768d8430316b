/**
 * The retry policy shared by the TypeScript and Python clients: which failures are
 * worth another attempt, and how long to wait first.
 *
 * - Transport failures UNAVAILABLE and DEADLINE_EXCEEDED: exponential backoff
 *   (1 s, 2 s, 4 s, ...). The call may have reached the tool, so only tools marked
 *   idempotent are retried, unless the caller forces it.
 * - RateLimitExceeded / ConcurrencyLimitExceeded: the host refused the call before the
 *   tool ran, so any tool may be retried: after the host's retry_after_ms when it sent
 *   one, else a longer backoff (10 s, 20 s, ...) / the exponential one.
 * - Everything else (tool logic errors, validation, timeouts of the tool itself): never.
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
  /** Attempts in all, the first included (default 3, as Python's max_retries). */
  maxAttempts?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Retry transport failures even when the tool is not marked idempotent. */
  force?: boolean;
  /**
   * When a transport failure is followed by SessionNotFound (the host restarted and
   * lost its in-memory sessions), re-create the session under the same id and go on.
   * Default true. Host-side session state (variables) is not restored.
   */
  recoverSession?: boolean;
  /** Called before each wait, e.g. to log it. */
  onRetry?: (event: RetryEvent) => void;
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

/** True for a transport failure that another attempt may get past. */
export function isTransientTransportError(error: unknown): error is BridgeError {
  return (
    error instanceof BridgeError &&
    error.type === ErrorType.CommunicationError &&
    error.grpcCode !== undefined &&
    TRANSIENT_CODES.has(error.grpcCode)
  );
}

/**
 * How long to wait before attempt `attempt + 1` after `error` ended attempt `attempt`
 * (from 0), or undefined when the error must not be retried.
 */
export function retryDelay(
  error: unknown,
  attempt: number,
  policy: BackoffPolicy,
  mayRepeatCall: boolean,
): number | undefined {
  const exponential = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** attempt);
  if (isTransientTransportError(error)) return mayRepeatCall ? exponential : undefined;
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
  /** Whether the tool may run twice (its spec's `idempotent`); looked up once, before the first attempt. */
  isIdempotent: () => Promise<boolean>;
  /** Re-creates the session after a host restart. */
  recoverSession: () => Promise<void>;
  signal?: AbortSignal | undefined;
}

/**
 * Runs `call` under the retry policy. Each pass of the loop either returns, throws, or
 * counts a failed attempt (at most `maxAttempts`); session re-creation happens at most
 * once per transport failure, so the loop is bounded by 2 * maxAttempts passes.
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
  let mayRepeatCall: boolean | undefined = options.force === true ? true : undefined;
  let failures = 0;
  let transportFailed = false;
  let needsRecovery = false;
  for (;;) {
    let phase: "recover" | "lookup" | "call" = "call";
    try {
      if (needsRecovery) {
        phase = "recover";
        await hooks.recoverSession();
        needsRecovery = false;
      }
      if (mayRepeatCall === undefined) {
        phase = "lookup";
        mayRepeatCall = await hooks.isIdempotent();
      }
      phase = "call";
      return await call();
    } catch (error) {
      if (
        recover &&
        transportFailed &&
        phase === "call" &&
        error instanceof BridgeError &&
        error.type === ErrorType.SessionNotFound
      ) {
        transportFailed = false;
        needsRecovery = true;
        continue;
      }
      failures++;
      // Re-creating a session and listing tools change nothing the tool sees: always safe to repeat.
      const delay = retryDelay(error, failures - 1, policy, phase !== "call" || mayRepeatCall === true);
      if (delay === undefined || failures >= maxAttempts) throw error;
      if (isTransientTransportError(error)) transportFailed = true;
      options.onRetry?.({ attempt: failures, delayMs: delay, error: error as BridgeError });
      await backoffSleep(delay, hooks.signal);
    }
  }
}
