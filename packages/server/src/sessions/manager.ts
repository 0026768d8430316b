import { randomUUID } from "node:crypto";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Logger } from "pino";
import { hasQuotas, mayUse, type Principal, seesEverySession } from "../auth/principal.js";
import { sessionNotFound } from "./errors.js";
import {
  type CreateResult,
  metadataBytes,
  type SessionEnded,
  type SessionPage,
  type SessionQuery,
  type SessionRecord,
  type SessionTable,
} from "./session-table.js";

const SESSION_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

export interface SessionManagerOptions {
  /** The sessions part of the host's store. */
  sessions: SessionTable;
  timeoutMs: number;
  sweepIntervalMs: number;
  log: Logger;
  /** Live sessions one authenticated principal may own; 0: no such limit. */
  maxSessionsPerPrincipal: number;
  /** Largest session metadata in UTF-8 bytes of keys and values. */
  maxSessionMetadataBytes: number;
}

/**
 * The host's view of sessions: validates ids and metadata, turns "unknown, expired or
 * another principal's" into SessionNotFound, runs the expiry sweep, and tells listeners
 * (tool registry, variables) when a session ends so they can drop what belonged to it.
 */
export class SessionManager {
  private readonly table: SessionTable;
  readonly timeoutMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly listeners: ((event: SessionEnded) => void)[] = [];

  constructor(private readonly options: SessionManagerOptions) {
    this.table = options.sessions;
    this.timeoutMs = options.timeoutMs;
    this.table.onSessionEnded((event) => {
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
      this.table.sweep(Date.now()).catch((error: unknown) => {
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

  /**
   * Creates the session owned by `principal`, or attaches to it when `principal` may use
   * it; an empty id gets a fresh one. The host principal creates sessions owned by `owner`
   * (itself by default) and attaches to any. An operator, which may use every session,
   * still attaches only to its own here: attaching would count another's session against
   * its quota of sessions.
   */
  async create(
    id: string,
    metadata: Record<string, string>,
    principal: Principal,
    owner: string = principal.name,
  ): Promise<CreateResult> {
    const sessionId = id === "" ? `session_${randomUUID()}` : id;
    if (!SESSION_ID.test(sessionId)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `invalid session id ${JSON.stringify(sessionId.slice(0, 200))}: use 1-128 characters ` +
          "from letters, digits and _ . : @ -",
        { details: { field: "session_id" } },
      );
    }
    this.checkMetadata(metadata);
    return this.table.create(sessionId, metadata, Date.now(), {
      owner: principal.kind === "host" ? owner : principal.name,
      anyOwner: principal.kind === "host",
      maxPerOwner: hasQuotas(principal) ? this.options.maxSessionsPerPrincipal : 0,
    });
  }

  /**
   * The live session, refreshed; throws SessionNotFound when it is unknown, expired or
   * not `principal`'s to use (the same error: the id's existence is not revealed).
   */
  async require(id: string, principal: Principal): Promise<SessionRecord> {
    const record = await this.table.touch(id, Date.now());
    if (record === undefined || !mayUse(principal, record.owner)) throw sessionNotFound(id);
    return record;
  }

  /** The live session without refreshing it; throws SessionNotFound as `require` does. */
  async peek(id: string, principal: Principal): Promise<SessionRecord> {
    const record = await this.table.get(id, Date.now());
    if (record === undefined || !mayUse(principal, record.owner)) throw sessionNotFound(id);
    return record;
  }

  /** Whether the session is live and `principal` may use it, without refreshing it. */
  async usableBy(id: string, principal: Principal): Promise<boolean> {
    const record = await this.table.get(id, Date.now());
    return record !== undefined && mayUse(principal, record.owner);
  }

  /** A page of live sessions in id order (ListSessions); the caller decides whose it may see. */
  list(query: SessionQuery): Promise<SessionPage> {
    return this.table.listSessions(query, Date.now());
  }

  /** Ends the session; throws SessionNotFound as `require` does. */
  async cleanup(id: string, principal: Principal): Promise<void> {
    const owner = seesEverySession(principal) ? undefined : principal.name;
    if (!(await this.table.delete(id, "cleanup", owner))) throw sessionNotFound(id);
  }

  count(): Promise<number> {
    return this.table.count();
  }

  expiresAt(record: SessionRecord): number {
    return record.lastAccessedAt + this.timeoutMs;
  }

  private checkMetadata(metadata: Record<string, string>): void {
    const max = this.options.maxSessionMetadataBytes;
    const size = metadataBytes(metadata);
    if (size <= max) return;
    throw new BridgeError(
      ErrorType.ResourceExhausted,
      `the session metadata is ${size} bytes, over the host's ${max}-byte limit (maxSessionMetadataBytes); ` +
        "keep large data in session variables instead",
      { details: { quota: "maxSessionMetadataBytes", limit: String(max), size: String(size) } },
    );
  }
}
