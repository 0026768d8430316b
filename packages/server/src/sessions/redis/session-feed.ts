/**
 * One session's changes as one node of the Redis store delivers them: changes arrive
 * from the session's Pub/Sub channel (every node's commits) and from this node's own
 * commits (as their replies come back), in any order and possibly twice; the feed hands
 * them on in sequence order, each once. A gap (a change that should have come first has
 * not) is filled from the session's log stream after a short wait, since the missing
 * change is usually only a moment behind on the other connection. The changes waiting
 * behind a gap are bounded by what the log keeps: beyond that many (or bytes) the missing
 * change is no longer in the log, and the feed is lost at once instead of holding more.
 */
import type { BridgeError } from "@toolbridge/core";
import { historyTrimmed } from "../errors.js";
import type { Following, VariableChange } from "../variable-store.js";

/** How long a gap may stay open before the log is read to fill it. */
const GAP_WAIT_MS = 50;

/** What the session's log keeps at most: watchHistory changes, maxSessionVariableBytes bytes. */
export interface FeedLimits {
  readonly changes: number;
  readonly bytes: number;
}

export interface FeedSource {
  /** The changes after `after`, as many as the log has, in order. */
  readAfter(sessionId: string, after: bigint): Promise<readonly VariableChange[]>;
  deliver(change: VariableChange): void;
  /** The feed cannot continue without a gap. */
  lost(sessionId: string, error: BridgeError): void;
}

export class SessionFeed {
  /** The last delivered sequence; undefined until the start position is known. */
  private delivered: bigint | undefined;
  private readonly pending = new Map<bigint, VariableChange>();
  private pendingBytes = 0;
  private gapTimer: NodeJS.Timeout | undefined;
  private filling = false;
  private followers = 0;
  /** Settles once subscribed and the start position is known. */
  ready: Promise<void> = Promise.resolve();
  closed = false;

  constructor(
    readonly sessionId: string,
    private readonly source: FeedSource,
    private readonly onIdle: (feed: SessionFeed) => void,
    private readonly limits: FeedLimits,
  ) {}

  /** Sets where delivery starts: after `sequence`. Changes already offered beyond it stay. */
  start(sequence: bigint): void {
    this.delivered = sequence;
    this.flush();
  }

  /** A follower of this feed; delivery stops when the last one closes. */
  follower(): Following {
    this.followers += 1;
    let open = true;
    return {
      sequence: this.delivered ?? 0n,
      close: () => {
        if (!open) return;
        open = false;
        this.followers -= 1;
        if (this.followers === 0) this.onIdle(this);
      },
    };
  }

  /** False for a change this feed has delivered or holds already (so it need not be decoded). */
  wants(sequence: bigint): boolean {
    if (this.closed) return false;
    return !((this.delivered !== undefined && sequence <= this.delivered) || this.pending.has(sequence));
  }

  offer(change: VariableChange): void {
    if (this.closed) return;
    if (this.delivered !== undefined && change.sequence <= this.delivered) return;
    if (this.pending.has(change.sequence)) return;
    this.pending.set(change.sequence, change);
    this.pendingBytes += changeBytes(change);
    this.flush();
    const { delivered } = this;
    // What is still pending waits behind a gap (before start(), it may all be older than
    // where delivery starts). More than the log keeps: the change it waits for is trimmed.
    if (!this.closed && delivered !== undefined && this.beyondLog()) {
      this.source.lost(
        this.sessionId,
        historyTrimmed(this.sessionId, delivered, this.oldestPending(delivered)),
      );
      this.close();
    }
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
    this.pendingBytes = 0;
    clearTimeout(this.gapTimer);
  }

  private flush(): void {
    if (this.delivered === undefined || this.closed) return;
    for (;;) {
      const next = this.pending.get(this.delivered + 1n);
      if (next === undefined) break;
      this.drop(next);
      this.delivered = next.sequence;
      this.source.deliver(next);
      if (this.closed) return;
    }
    // Anything at or below the delivered position was a duplicate.
    for (const change of this.pending.values()) {
      if (change.sequence <= this.delivered) this.drop(change);
    }
    if (this.pending.size === 0) {
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    } else {
      this.gapTimer ??= setTimeout(() => {
        this.gapTimer = undefined;
        void this.fill();
      }, GAP_WAIT_MS);
    }
  }

  private beyondLog(): boolean {
    return this.pending.size > this.limits.changes || this.pendingBytes > this.limits.bytes;
  }

  private drop(change: VariableChange): void {
    if (this.pending.delete(change.sequence)) this.pendingBytes -= changeBytes(change);
  }

  private oldestPending(fallback: bigint): bigint {
    let oldest: bigint | undefined;
    for (const sequence of this.pending.keys())
      if (oldest === undefined || sequence < oldest) oldest = sequence;
    return oldest ?? fallback;
  }

  private async fill(): Promise<void> {
    if (this.filling || this.closed || this.delivered === undefined) return;
    this.filling = true;
    try {
      const changes = await this.source.readAfter(this.sessionId, this.delivered);
      for (const change of changes) this.offer(change);
      // The log was read after the pending changes were committed: a gap left now means
      // the change that fills it was trimmed from the log.
      if (!this.closed && this.pending.size > 0 && this.delivered !== undefined) {
        this.source.lost(
          this.sessionId,
          historyTrimmed(this.sessionId, this.delivered, this.oldestPending(this.delivered)),
        );
      }
    } catch (error) {
      this.source.lost(this.sessionId, error as BridgeError);
    } finally {
      this.filling = false;
    }
  }
}

/** A change's bytes as the log counts them (scripts/variables.ts COMMIT). */
function changeBytes(change: VariableChange): number {
  return change.result.kind === "set" ? change.result.bytes : change.name.length + 16;
}
