/**
 * Idempotent replay. A call that carries its own request id claims that id in its session
 * before it runs, and its outcome is recorded there when it ends; a retry under the same id
 * gets the recorded outcome without the tool running again, and one that arrives while the
 * first still runs (on this node or another) waits for it. A claim and its record keep the
 * call's fingerprint, so that the id answers only the same call: another call under it is
 * refused with RequestIdReused, never given the first call's outcome. The records live in
 * the session store (its CallRecordStore), so with the Redis store every node sees them. docs/replay.md states the
 * guarantee and its limits.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { BridgeError, ErrorType, pb, type pbValues } from "@toolbridge/core";
import type { CallRecordStore } from "../sessions/call-records.js";
import type { CallOutcome, CallRequest, Cancellation } from "./context.js";

export interface ReplayOptions {
  /** This node's name in claims. */
  readonly node: string;
  /** An outcome encoded larger than this is not kept; a retry gets an error saying so. */
  readonly maxRecordBytes: number;
  /** Whether a node holding a claim is gone (its calls will never settle). */
  readonly isGone: (node: string) => Promise<boolean>;
}

/** A claimed request id: the call runs, then `settle` records its outcome (or releases the id). */
export interface ReplayClaim {
  /** Records `outcome` when `recordable`, else releases the claim; never throws. */
  settle(outcome: CallOutcome, recordable: boolean): Promise<void>;
}

/** Extra time a claim stands beyond the call's own budget, so that its settle can land. */
const CLAIM_SLACK_MS = 10_000;
/** Waits between looks at a claim held by another node. */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 200;

/** Error types that say the tool did not run, or was stopped for the caller: nothing to replay. */
const NOT_RECORDED: ReadonlySet<string> = new Set([
  ErrorType.Cancelled,
  ErrorType.Unavailable,
  ErrorType.SessionNotFound,
  ErrorType.ToolNotFound,
  ErrorType.ValidationError,
  ErrorType.RateLimitExceeded,
  ErrorType.ConcurrencyLimitExceeded,
]);

/**
 * Whether an outcome is recorded: a result, or a failure of a tool that ran (it threw, timed
 * out by its own timeout, returned something its output schema refuses). Not a refusal
 * before the tool ran, a cancellation, an Unavailable (a worker or node that died), nor the
 * caller's gRPC deadline passing: a retry after those should run the tool.
 */
export function isRecordable(outcome: CallOutcome, ran: boolean): boolean {
  if (outcome.success) return true;
  const { type, details } = outcome.error;
  if (!ran || NOT_RECORDED.has(type)) return false;
  return !(type === ErrorType.Timeout && details.timeout === "deadline");
}

/**
 * What a call asks for, the same for every attempt of it: the SHA-256 (hex) of the call as
 * a ToolCallItem holding only its tool id, its positional arguments and its keyword
 * arguments in name order (a proto map has no order a client could be held to). The
 * session is not in it: records belong to their session already.
 */
export function callFingerprint(req: CallRequest): string {
  const entries = Object.entries(req.kwargs);
  // fromEntries makes own data properties, so even a kwarg named "__proto__" stays one.
  const sorted: Record<string, pbValues.Value> =
    entries.length < 2 ? req.kwargs : Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
  const item = pb.ToolCallItem.encode({
    index: undefined,
    toolId: req.toolId,
    args: [...req.args],
    kwargs: sorted,
    timeoutMs: 0,
  }).finish();
  return createHash("sha256").update(item).digest("hex");
}

/** The refusal of a call whose request id names another call of its session. */
export function requestIdReused(requestId: string): BridgeError {
  const shown = requestId.slice(0, 200);
  return new BridgeError(
    ErrorType.RequestIdReused,
    `request id '${shown}' already names another call in this session (another tool or other arguments); ` +
      "this call was refused and did not run. A request id is an idempotency key: give every call its own, " +
      "and repeat one only to retry the same call",
    { details: { reason: "request_id_reused", request_id: shown } },
  );
}

/** A call running on this node under a request id: what it asks for, and its end. */
interface Running {
  readonly fingerprint: string;
  readonly settled: Promise<void>;
}

/** The claims this node holds and the outcomes it records, over the store's call records. */
export class ReplayLedger {
  /** Claims of calls running on this node, so that a duplicate here waits without polling. */
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly store: CallRecordStore,
    private readonly options: ReplayOptions,
  ) {}

  /**
   * Before `req` runs: its recorded outcome when the session has one for `requestId`
   * (after waiting for the same call still running under it), else a claim the caller must
   * settle. Throws RequestIdReused when the id names another call (running or recorded),
   * SessionNotFound, Unavailable (the store), or the cancellation's reason.
   */
  async begin(
    req: CallRequest,
    requestId: string,
    budgetMs: number,
    cancellation: Cancellation,
  ): Promise<CallOutcome | ReplayClaim> {
    const { sessionId } = req;
    const key = `${sessionId}\u0000${requestId}`;
    const fingerprint = callFingerprint(req);
    const { node } = this.options;
    let takeOverFrom: string | undefined;
    let pollMs = FIRST_POLL_MS;
    for (;;) {
      if (cancellation.reason !== undefined) throw cancellation.reason;
      const local = this.running.get(key);
      if (local !== undefined) {
        if (local.fingerprint !== fingerprint) throw requestIdReused(requestId);
        await Promise.race([local.settled, cancellation.whenCancelled()]);
        continue;
      }
      const now = Date.now();
      const until = now + budgetMs + CLAIM_SLACK_MS;
      const claim = await this.store.claim(
        sessionId,
        requestId,
        { fingerprint, node, until, takeOverFrom },
        now,
      );
      if (claim.state === "reused") throw requestIdReused(requestId);
      if (claim.state === "recorded") return replayed(claim.outcome);
      if (claim.state === "claimed") return this.hold(key, fingerprint, sessionId, requestId);
      if (claim.node === node) {
        // Held by a call here (it claimed while this one waited for the store: wait for it
        // above), or by none any more (its settle failed): then take it over.
        takeOverFrom = this.running.has(key) ? undefined : node;
        continue;
      }
      if (await this.options.isGone(claim.node)) {
        takeOverFrom = claim.node;
        continue;
      }
      await Promise.race([sleep(pollMs), cancellation.whenCancelled()]);
      pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
    }
  }

  private hold(key: string, fingerprint: string, sessionId: string, requestId: string): ReplayClaim {
    let release: () => void = () => {};
    const settled = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.running.set(key, { fingerprint, settled });
    return {
      settle: async (outcome, recordable) => {
        try {
          const bytes = recordable ? this.encode(requestId, outcome) : undefined;
          await this.store.settle(sessionId, requestId, this.options.node, bytes, Date.now());
        } catch {
          // Unrecorded (the store is unreachable, the session gone): the claim lapses at its
          // `until` and a retry then runs the call again, as after a node that died.
        } finally {
          this.running.delete(key);
          release();
        }
      },
    };
  }

  private encode(requestId: string, outcome: CallOutcome): Uint8Array {
    const bytes = pb.ToolCallResult.encode(
      outcome.success
        ? { index: 0, success: true, result: outcome.result, error: undefined, metrics: outcome.metrics }
        : { index: 0, success: false, result: undefined, error: outcome.error, metrics: outcome.metrics },
    ).finish();
    if (bytes.length <= this.options.maxRecordBytes) return bytes;
    const error = new BridgeError(
      ErrorType.ResourceExhausted,
      `request '${requestId}' already ran and completed, but its outcome (${bytes.length} bytes) is over ` +
        `the host's replayMaxRecordBytes (${this.options.maxRecordBytes}) and was not kept; it was not run ` +
        "again. Call with a new request id to run the tool again",
      {
        details: {
          reason: "replay_not_kept",
          request_id: requestId,
          size: String(bytes.length),
          max_record_bytes: String(this.options.maxRecordBytes),
        },
      },
    );
    return pb.ToolCallResult.encode({
      index: 0,
      success: false,
      result: undefined,
      error: { type: error.type, message: error.message, details: error.details, stacktrace: "" },
      metrics: outcome.metrics,
    }).finish();
  }
}

/** A recorded outcome, as the call's outcome. */
function replayed(bytes: Uint8Array): CallOutcome {
  const record = pb.ToolCallResult.decode(bytes);
  const metrics = record.metrics ?? { durationMs: 0, hostMs: 0 };
  if (record.success && record.result !== undefined) return { success: true, result: record.result, metrics };
  const error = record.error ?? {
    type: ErrorType.InternalError,
    message: "the recorded outcome of this request id is unreadable",
    details: {},
    stacktrace: "",
  };
  return { success: false, error, metrics };
}

/** Whether `begin` returned a claim rather than a recorded outcome. */
export function isClaim(value: CallOutcome | ReplayClaim): value is ReplayClaim {
  return "settle" in value;
}
