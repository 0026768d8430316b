/**
 * Per-tool admission limits declared at registration: how many calls of a tool may
 * run at once and how many may start per minute. Both are host-wide (every session
 * shares them) because they protect what the tool talks to, not the caller. With a store
 * shared by several nodes the rate limit of a global tool is counted there, for all nodes
 * together (SharedRate); the concurrency limit stays per node (docs/stores.md says why).
 * A call over a limit is refused before the tool runs, so the client may always retry it.
 */
import { BridgeError, ErrorType } from "@toolbridge/core";

export interface ToolLimitOptions {
  /** Calls of this tool running at once, over all sessions; further calls get ConcurrencyLimitExceeded. */
  maxConcurrentCalls?: number;
  /** Calls that may start in any 60-second window; further calls get RateLimitExceeded with a retry-after. */
  rateLimitPerMinute?: number;
}

export interface ToolLimits {
  readonly maxConcurrentCalls: number;
  readonly rateLimitPerMinute: number;
}

const WINDOW_MS = 60_000;
// The rate window keeps one timestamp per admitted call; this bounds its memory.
const MAX_RATE = 1_000_000;
const MAX_CONCURRENT = 1_000_000;

/** Checks declared limits and normalizes them (0 = unlimited, as on the wire). */
export function validateLimits(toolName: string, options: ToolLimitOptions): ToolLimits {
  const check = (key: keyof ToolLimitOptions, max: number): number => {
    const value = options[key];
    if (value === undefined) return 0;
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `tool '${toolName}': ${key} must be an integer from 1 to ${max} (omit it for no limit)`,
        { details: { field: key } },
      );
    }
    return value;
  };
  return {
    maxConcurrentCalls: check("maxConcurrentCalls", MAX_CONCURRENT),
    rateLimitPerMinute: check("rateLimitPerMinute", MAX_RATE),
  };
}

/** One admitted call; release it exactly once when the call ends (extra calls are ignored). */
export interface Permit {
  release(): void;
}

const NO_LIMITS: Permit = { release: () => {} };

/**
 * The counters behind one tool's limits. The rate limit is a sliding window over the
 * start times of admitted calls (a ring buffer of `rateLimitPerMinute` entries), so no
 * 60-second window ever holds more starts than declared, and the retry-after it reports
 * is exact: the moment the oldest start leaves the window.
 */
export class ToolLimiter {
  private running = 0;
  private readonly starts: Float64Array;
  private head = 0;
  private count = 0;

  constructor(
    private readonly toolName: string,
    readonly limits: ToolLimits,
  ) {
    this.starts = new Float64Array(limits.rateLimitPerMinute);
  }

  get active(): number {
    return this.running;
  }

  /**
   * Admits a call or throws ConcurrencyLimitExceeded / RateLimitExceeded; nothing is counted
   * on refusal. With `countRate` false the rate limit is left to the caller (a shared count).
   */
  acquire(now = Date.now(), countRate = true): Permit {
    const { maxConcurrentCalls, rateLimitPerMinute } = this.limits;
    if (maxConcurrentCalls > 0 && this.running >= maxConcurrentCalls) {
      throw new BridgeError(
        ErrorType.ConcurrencyLimitExceeded,
        `tool '${this.toolName}' already runs ${this.running} call(s), its limit (maxConcurrentCalls); ` +
          "retry when one finishes",
        { details: { tool: this.toolName, max_concurrent_calls: String(maxConcurrentCalls) } },
      );
    }
    if (rateLimitPerMinute > 0 && countRate) {
      while (this.count > 0 && (this.starts[this.head] as number) <= now - WINDOW_MS) {
        this.head = (this.head + 1) % rateLimitPerMinute;
        this.count--;
      }
      if (this.count >= rateLimitPerMinute) {
        const retryAfter = Math.max(1, Math.ceil((this.starts[this.head] as number) + WINDOW_MS - now));
        throw rateLimited(this.toolName, rateLimitPerMinute, retryAfter);
      }
      this.starts[(this.head + this.count) % rateLimitPerMinute] = now;
      this.count++;
    }
    if (maxConcurrentCalls === 0) return NO_LIMITS;
    this.running++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.running--;
      },
    };
  }
}

function rateLimited(tool: string, rateLimitPerMinute: number, retryAfter: number): BridgeError {
  return new BridgeError(
    ErrorType.RateLimitExceeded,
    `tool '${tool}' allows ${rateLimitPerMinute} call(s) per minute; retry in ${retryAfter} ms`,
    {
      details: {
        tool,
        rate_limit_per_minute: String(rateLimitPerMinute),
        retry_after_ms: String(retryAfter),
      },
    },
  );
}

/**
 * A rate limit counted for several nodes together: counts one start of `tool` against
 * `limit` per minute and resolves with 0, or with the milliseconds until a start is allowed.
 */
export type SharedRate = (tool: string, limit: number) => Promise<number>;

/** Per-tool limiters live beside the Tool objects rather than in them, and die with them. */
const limiters = new WeakMap<object, ToolLimiter>();

/**
 * Admits one call of `tool` against its declared limits; with `shared`, the rate limit is
 * counted there (the concurrency limit stays here) and the permit comes asynchronously.
 */
export function admit(
  tool: { readonly name: string; readonly limits: ToolLimits },
  shared?: SharedRate,
): Permit | Promise<Permit> {
  const { maxConcurrentCalls, rateLimitPerMinute } = tool.limits;
  if (maxConcurrentCalls === 0 && rateLimitPerMinute === 0) return NO_LIMITS;
  let limiter = limiters.get(tool);
  if (limiter === undefined) {
    limiter = new ToolLimiter(tool.name, tool.limits);
    limiters.set(tool, limiter);
  }
  if (shared === undefined || rateLimitPerMinute === 0) return limiter.acquire();
  const permit = limiter.acquire(Date.now(), false);
  return shared(tool.name, rateLimitPerMinute).then(
    (retryAfter) => {
      if (retryAfter <= 0) return permit;
      permit.release();
      throw rateLimited(tool.name, rateLimitPerMinute, retryAfter);
    },
    (error: unknown) => {
      permit.release();
      throw error;
    },
  );
}
