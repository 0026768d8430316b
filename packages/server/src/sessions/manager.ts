import { randomUUID } from "node:crypto";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Logger } from "pino";
import {
  type CreateResult,
  type SessionEnded,
  type SessionRecord,
  type SessionStore,
  sessionNotFound,
} from "./store.js";

const SESSION_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

export interface SessionManagerOptions {
  store: SessionStore;
  timeoutMs: number;
  sweepIntervalMs: number;
  log: Logger;
}

/**
 * The host's view of sessions: validates ids, turns "unknown or expired" into
 * SessionNotFound, runs the expiry sweep, and tells listeners (tool registry,
 * variables) when a session ends so they can drop what belonged to it.
 */
export class SessionManager {
  readonly store: SessionStore;
  readonly timeoutMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly listeners: ((event: SessionEnded) => void)[] = [];

  constructor(private readonly options: SessionManagerOptions) {
    this.store = options.store;
    this.timeoutMs = options.timeoutMs;
    this.store.onSessionEnded((event) => {
      options.log.debug({ sessionId: event.id, reason: event.reason }, "session ended");
      for (const listener of this.listeners) {
        try {
          listener(event);
        } catch (error) {
          options.log.error({ err: error, sessionId: event.id }, "session-ended listener failed");
        }
      }
    });
  }

  onSessionEnded(listener: (event: SessionEnded) => void): void {
    this.listeners.push(listener);
  }

  startSweeping(): void {
    this.sweepTimer ??= setInterval(() => {
      this.store.sweep(Date.now()).catch((error: unknown) => {
        this.options.log.error({ err: error }, "session sweep failed");
      });
    }, this.options.sweepIntervalMs);
    // The sweep alone must not keep the process alive.
    this.sweepTimer.unref();
  }

  stopSweeping(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Creates the session or attaches to it; an empty id gets a fresh one. */
  async create(id: string, metadata: Record<string, string>): Promise<CreateResult> {
    const sessionId = id === "" ? `session_${randomUUID()}` : id;
    if (!SESSION_ID.test(sessionId)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `invalid session id ${JSON.stringify(sessionId.slice(0, 200))}: use 1-128 characters ` +
          "from letters, digits and _ . : @ -",
        { details: { field: "session_id" } },
      );
    }
    return this.store.create(sessionId, metadata, Date.now());
  }

  /** The live session, refreshed; throws SessionNotFound when it is unknown or expired. */
  async require(id: string): Promise<SessionRecord> {
    const record = await this.store.touch(id, Date.now());
    if (record === undefined) throw sessionNotFound(id);
    return record;
  }

  /** The live session without refreshing it; throws SessionNotFound. */
  async peek(id: string): Promise<SessionRecord> {
    const record = await this.store.get(id, Date.now());
    if (record === undefined) throw sessionNotFound(id);
    return record;
  }

  async cleanup(id: string): Promise<void> {
    if (!(await this.store.delete(id, "cleanup"))) throw sessionNotFound(id);
  }

  count(): Promise<number> {
    return this.store.count();
  }

  expiresAt(record: SessionRecord): number {
    return record.lastAccessedAt + this.timeoutMs;
  }
}
