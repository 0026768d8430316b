/**
 * The change feeds of the sessions this node follows (VariableStore.follow on the Redis
 * store): one subscription per followed session, shared by all its followers here, whose
 * changes a SessionFeed hands to the change listeners in commit order, filling gaps from the
 * log (docs/stores.md#watches-across-hosts).
 */
import { BridgeError, ErrorType } from "@toolbridge/core";
import { sessionNotFound } from "../errors.js";
import type { Following, VariableChange } from "../variable-store.js";
import { LOG_PAGE, publishedChange, publishedSequence, type RedisChangeLog } from "./change-log.js";
import type { RedisConnection } from "./connection.js";
import { type FeedLimits, type FeedSource, SessionFeed } from "./session-feed.js";

export class RedisChangeFeeds {
  private readonly feeds = new Map<string, SessionFeed>();
  private readonly listeners: ((change: VariableChange) => void)[] = [];
  private readonly lostListeners: ((sessionId: string, error: BridgeError) => void)[] = [];
  private readonly source: FeedSource;

  constructor(
    private readonly redis: RedisConnection,
    log: RedisChangeLog,
    private readonly limits: FeedLimits,
  ) {
    this.source = {
      readAfter: async (sessionId, after) => (await log.read(sessionId, after, LOG_PAGE)).changes,
      deliver: (change) => {
        for (const listener of this.listeners) listener(change);
      },
      lost: (sessionId, error) => this.lost(sessionId, error),
    };
  }

  onChanged(listener: (change: VariableChange) => void): void {
    this.listeners.push(listener);
  }

  onFollowLost(listener: (sessionId: string, error: BridgeError) => void): void {
    this.lostListeners.push(listener);
  }

  /**
   * Subscribes this node to the session's change channel (once for all its followers),
   * then reads the session's sequence: every change after it arrives on the channel or
   * from this node's own commits (offer), and the log fills any gap.
   */
  async follow(sessionId: string): Promise<Following> {
    let feed = this.feeds.get(sessionId);
    if (feed === undefined) {
      const created = new SessionFeed(sessionId, this.source, (idle) => this.unfollow(idle), this.limits);
      feed = created;
      this.feeds.set(sessionId, created);
      created.ready = this.start(created);
      created.ready.catch(() => {
        if (this.feeds.get(sessionId) === created) this.drop(created);
      });
    }
    await feed.ready;
    return feed.follower();
  }

  /** A change this node committed: on to the session's feed, when it is followed here. */
  offer(change: VariableChange): void {
    this.feeds.get(change.sessionId)?.offer(change);
  }

  /** The session ended: its feed stops (its watches end through the ended event). */
  sessionEnded(sessionId: string): void {
    const feed = this.feeds.get(sessionId);
    if (feed !== undefined) this.drop(feed);
  }

  close(): void {
    for (const feed of this.feeds.values()) feed.close();
    this.feeds.clear();
  }

  private async start(feed: SessionFeed): Promise<void> {
    const { redis } = this;
    const { sessionId } = feed;
    await redis.subscribe(
      redis.keys.changesChannel(sessionId),
      (message) => this.message(sessionId, message),
      () => this.subscriptionLost(feed),
    );
    const sequence = await redis.call((r) => r.hget(redis.keys.meta(sessionId), "seq"));
    if (sequence === null) throw sessionNotFound(sessionId);
    feed.start(BigInt(sequence));
  }

  private message(sessionId: string, message: Buffer): void {
    const feed = this.feeds.get(sessionId);
    // This node's own commits come back here too, already delivered: skip them undecoded.
    if (feed === undefined || !feed.wants(publishedSequence(message))) return;
    let change: VariableChange;
    try {
      change = publishedChange(sessionId, message);
    } catch (error) {
      // Unreadable: fill from the log instead, as for a lost message.
      this.redis.reportError(error as Error);
      return;
    }
    feed.offer(change);
  }

  private lost(sessionId: string, error: BridgeError): void {
    const feed = this.feeds.get(sessionId);
    if (feed !== undefined) this.drop(feed);
    // A session that is gone ends its watches through its ended event instead.
    if (error instanceof BridgeError && error.type === ErrorType.SessionNotFound) return;
    for (const listener of this.lostListeners) listener(sessionId, this.redis.unavailable(error));
  }

  private unfollow(feed: SessionFeed): void {
    if (this.feeds.get(feed.sessionId) === feed) this.drop(feed);
  }

  private drop(feed: SessionFeed): void {
    feed.close();
    this.feeds.delete(feed.sessionId);
    this.redis.unsubscribe(this.redis.keys.changesChannel(feed.sessionId));
  }

  /** Without its subscription, the feed may have missed changes: it ends, its watchers told. */
  private subscriptionLost(feed: SessionFeed): void {
    if (this.feeds.get(feed.sessionId) !== feed) return;
    this.feeds.delete(feed.sessionId);
    feed.close();
    if (this.redis.closing) return;
    const error = new BridgeError(
      ErrorType.Unavailable,
      `lost the connection to the session store (Redis at ${this.redis.where}); watch again, resuming after ` +
        "the last sequence seen, once it is back",
      { details: { store: "redis", fault: "unreachable", retriable: "true" } },
    );
    for (const listener of this.lostListeners) listener(feed.sessionId, error);
  }
}
