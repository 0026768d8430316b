/**
 * The streams open under each caller's credentials (Calls, StreamTool, variable and health
 * watches, reflection). A stream is authenticated when it opens and lives long after, so
 * its credentials are checked again whenever what accepts them may have changed (the tokens
 * file reloaded, the application's `host.revalidate()`): a revoked token keeps no stream.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { RpcStatusError } from "../grpc/status.js";
import type { Principal } from "./principal.js";

/** How a stream whose credentials were revoked ends: its status. */
export interface Revocation {
  readonly code: grpc.status;
  readonly details: string;
}

/** What a credentials check reads of a call; grpc-js server calls of every kind have these. */
export interface CheckedCall {
  readonly metadata: grpc.Metadata;
  getPath(): string;
}

/**
 * The credentials one open stream was authenticated with: its principal, and the end the
 * stream must take when they are revoked. The stream's handler says how it ends
 * (`onRevoked`) and releases them when it is over.
 */
export class StreamCredentials {
  private revocation: Revocation | undefined;
  private listener: ((revocation: Revocation) => void) | undefined;

  constructor(
    readonly principal: Principal,
    private readonly forget: (credentials: StreamCredentials) => void = () => {},
  ) {}

  /** The status the stream must end with, once its credentials were revoked. */
  get revoked(): Revocation | undefined {
    return this.revocation;
  }

  /** Calls `listener` once when the credentials are revoked (soon, if they already are). */
  onRevoked(listener: (revocation: Revocation) => void): void {
    const revocation = this.revocation;
    if (revocation === undefined) this.listener = listener;
    else queueMicrotask(() => listener(revocation));
  }

  /** The stream is over: nothing to re-check any more. */
  release(): void {
    this.listener = undefined;
    this.forget(this);
  }

  /** Ends the stream with `revocation` (once). */
  revoke(revocation: Revocation): void {
    if (this.revocation !== undefined) return;
    this.revocation = revocation;
    const listener = this.listener;
    this.release();
    listener?.(revocation);
  }
}

/** The open streams of authenticated callers (calls of type C), re-checked on demand. */
export class OpenStreams<C extends CheckedCall> {
  private readonly open = new Map<StreamCredentials, C>();
  /** Counts re-checks, so that a stream checked against credentials that changed meanwhile is checked again. */
  private generation = 0;
  private lastReason = "";

  constructor(
    /** The authenticator's check: the principal the call's credentials name now; throws when none. */
    private readonly check: (call: C) => Promise<Principal>,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.open.size;
  }

  /** Authenticates a stream's call and keeps its credentials for re-checks until released or revoked. */
  async authenticate(call: C): Promise<StreamCredentials> {
    const generation = this.generation;
    const principal = await this.check(call);
    const credentials = new StreamCredentials(principal, (done) => this.open.delete(done));
    this.open.set(credentials, call);
    // The credentials in force changed while this call was checked: check it against the new ones.
    if (generation !== this.generation) void this.recheck(credentials, call, this.lastReason);
    return credentials;
  }

  /**
   * Checks every open stream's credentials again; those no longer accepted, naming
   * another principal than the one that opened the stream, or no longer carrying the
   * operator role it was opened with, are revoked (`reason` says what
   * prompted the check). Resolves with how many streams were revoked.
   */
  async revalidate(reason: string): Promise<number> {
    this.generation++;
    this.lastReason = reason;
    const revoked = await Promise.all(
      [...this.open].map(([credentials, call]) => this.recheck(credentials, call, reason)),
    );
    const count = revoked.filter(Boolean).length;
    this.log.info({ streams: this.open.size + count, revoked: count, reason }, "re-checked open streams");
    return count;
  }

  private async recheck(credentials: StreamCredentials, call: C, reason: string): Promise<boolean> {
    const opener = credentials.principal.name;
    let problem: string | undefined;
    let code = grpc.status.UNAUTHENTICATED;
    try {
      const now = await this.check(call);
      if (now.name !== opener) problem = `they now name another principal than '${opener}', who opened it`;
      // A stream opened as an operator may be on another principal's session.
      else if (credentials.principal.operator === true && now.operator !== true)
        problem = `'${opener}' no longer has the operator role`;
    } catch (error) {
      if (error instanceof RpcStatusError) {
        problem = error.message;
        code = error.code;
      } else {
        // A bug in the check; failing closed ends the stream rather than keep unchecked credentials.
        this.log.error({ err: error, method: call.getPath() }, "re-checking a stream's credentials failed");
        problem = `internal host error while authenticating: ${String(error)}`;
        code = grpc.status.INTERNAL;
      }
    }
    if (problem === undefined || !this.open.has(credentials)) return false;
    this.log.info(
      { principal: opener, method: call.getPath(), reason },
      "revoked an open stream's credentials",
    );
    credentials.revoke({
      code,
      details:
        `the credentials this stream was opened with are no longer accepted (${reason}): ${problem}; ` +
        "open a new stream with valid credentials",
    });
    return true;
  }
}
