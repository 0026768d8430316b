/**
 * The Redis store's Pub/Sub: channels every node hears for as long as it runs (the session
 * ends), and channels it follows for a while (a watched session's changes). On one Redis or
 * a Sentinel group, one subscriber connection carries them all (this file); on a Redis
 * Cluster, the followed channels are sharded (cluster-subscriptions.ts). Either way, a
 * connection that drops may have missed messages, so its channels are reported lost instead
 * of being quietly subscribed again.
 */
import type { Redis } from "ioredis";

export type MessageHandler = (message: Buffer) => void;

export interface Subscriptions {
  /** True while the channels of subscribeAlways are subscribed: no message on them can have been missed. */
  readonly listening: boolean;
  /** Subscribes `channel` now and on every connection of the subscriber. */
  subscribeAlways(channel: string, handler: MessageHandler): void;
  /**
   * Follows `channel` until unfollow(), or until its connection drops: then `lost` is called
   * once, and the channel is no longer followed.
   */
  follow(channel: string, handler: MessageHandler, lost: () => void): Promise<void>;
  unfollow(channel: string): void;
  /** Told when the channels of subscribeAlways dropped: messages may have been missed until `listening` again. */
  onLost(listener: () => void): void;
  /** Disconnects; nothing is reported lost any more. */
  close(): Promise<void>;
}

interface Followed {
  readonly handler: MessageHandler;
  readonly lost: () => void;
}

/** Every channel on one subscriber connection (one Redis, or the master of a Sentinel group). */
export class ClientSubscriptions implements Subscriptions {
  private readonly always = new Map<string, MessageHandler>();
  private readonly followed = new Map<string, Followed>();
  private readonly lostListeners: (() => void)[] = [];
  private subscribed = false;

  constructor(
    private readonly subscriber: Redis,
    private readonly reportError: (error: Error) => void,
    /** Runs a subscriber command, turning a failure into the store's error. */
    private readonly call: <T>(command: () => Promise<T>) => Promise<T>,
  ) {
    subscriber.on("ready", () => this.resubscribe());
    subscriber.on("close", () => this.dropped());
    subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => this.message(channel, message));
  }

  get listening(): boolean {
    return this.subscribed;
  }

  subscribeAlways(channel: string, handler: MessageHandler): void {
    this.always.set(channel, handler);
    if (this.subscribed)
      this.subscriber.subscribe(channel).catch((error: unknown) => this.reportError(error as Error));
  }

  async follow(channel: string, handler: MessageHandler, lost: () => void): Promise<void> {
    this.followed.set(channel, { handler, lost });
    await this.call(() => this.subscriber.subscribe(channel));
  }

  unfollow(channel: string): void {
    this.followed.delete(channel);
    if (this.subscribed) this.subscriber.unsubscribe(channel).catch(() => {});
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async close(): Promise<void> {
    this.followed.clear();
    await this.subscriber.quit().catch(() => {});
    this.subscriber.disconnect();
  }

  private resubscribe(): void {
    if (this.always.size === 0) {
      this.subscribed = true;
      return;
    }
    this.subscriber.subscribe(...this.always.keys()).then(
      () => {
        this.subscribed = true;
      },
      (error: unknown) => this.reportError(error as Error),
    );
  }

  private dropped(): void {
    this.subscribed = false;
    const followed = [...this.followed.values()];
    this.followed.clear();
    for (const listener of this.lostListeners) listener();
    for (const { lost } of followed) lost();
  }

  /** A Pub/Sub message. It runs inside ioredis's event handler, where a throw would end the process. */
  private message(channel: Buffer, message: Buffer): void {
    try {
      const name = channel.toString();
      (this.always.get(name) ?? this.followed.get(name)?.handler)?.(message);
    } catch (error) {
      this.reportError(error as Error);
    }
  }
}
