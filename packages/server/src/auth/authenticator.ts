/**
 * Who is calling: bearer tokens (`authorization: Bearer <token>`, from the tokens file),
 * the embedding application's own check (`host.authenticate(fn)`), and the subject of a
 * verified client certificate (mTLS). A call that none of them accepts is refused with
 * UNAUTHENTICATED before anything else happens.
 */
import { randomBytes } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { RpcStatusError } from "../grpc/status.js";
import { OpenStreams, StreamCredentials } from "./open-streams.js";
import { ANONYMOUS, HOST, type Principal, principalNameProblem } from "./principal.js";
import { loadTokensFile, TokenTable } from "./tokens.js";

/** What an authentication hook is given about a call. */
export interface AuthenticationRequest {
  /** The call's metadata (gRPC headers); for GET /metrics, its HTTP `authorization` header. */
  readonly metadata: grpc.Metadata;
  /** The method, e.g. "/toolbridge.v1.ToolBridge/ExecuteTool", or "GET /metrics". */
  readonly method: string;
  /** The token of an `authorization: Bearer <token>` header, if the call sent one. */
  readonly token: string | undefined;
  /** The client certificate the TLS handshake verified (mTLS), if any. */
  readonly certificate: PeerCertificate | undefined;
}

/**
 * What an authentication hook may return for a caller it recognises: its principal name
 * and, when the caller is to see every session (ListSessions, the inspector), the operator
 * role. An `operator <principal>` line of the tokens file grants the role by name as well.
 */
export interface HookPrincipal {
  readonly name: string;
  readonly operator?: boolean;
}

/**
 * The embedding application's check, e.g. a JWT or OIDC verification with a well-kept
 * library: returns the caller's principal name (or a HookPrincipal, to grant the operator
 * role), or undefined when these credentials are not for it (the host then tries the
 * client certificate). Throwing refuses the call with UNAUTHENTICATED and the error's message.
 */
export type AuthenticateHook = (
  request: AuthenticationRequest,
) => string | HookPrincipal | undefined | Promise<string | HookPrincipal | undefined>;

/** What the authenticator reads of a call: grpc-js server calls of every kind have these. */
export interface AuthenticatedCall {
  readonly metadata: grpc.Metadata;
  getPath(): string;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate | undefined };
}

export interface AuthenticatorOptions {
  /** The tokens file (`authTokensFile`); empty for none. */
  readonly tokensFile: string;
  /** True when TLS requires client certificates (`tlsClientCa`): their subject is a principal. */
  readonly clientCertificates: boolean;
  readonly log: Logger;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function unauthenticated(message: string): RpcStatusError {
  return new RpcStatusError(grpc.status.UNAUTHENTICATED, message);
}

/** The token of an `authorization: Bearer <token>` header; undefined without one. */
export function bearerToken(metadata: grpc.Metadata): string | undefined {
  const header = metadata.get("authorization")[0];
  if (typeof header !== "string") return undefined;
  const match = BEARER.exec(header);
  if (match === null) {
    throw unauthenticated("the authorization header must read 'Bearer <token>'");
  }
  return match[1];
}

/** A certificate subject as one string, e.g. "CN=alice,O=Acme". */
export function subjectName(certificate: PeerCertificate): string {
  return Object.entries(certificate.subject ?? {})
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : String(value)}`)
    .join(",");
}

export class Authenticator {
  /**
   * The token of the host's own clients (its Python workers, the agents it spawns): they
   * act as the host. Random per process, never written anywhere; handed to children only.
   */
  readonly hostToken = randomBytes(32).toString("base64url");
  /** The tokens file's tokens, and the host's own. */
  private tokens: TokenTable;
  private fileTokens = 0;
  /** The token the hosts sharing a store forward calls to each other with; acts as the host. */
  private peerToken: string | undefined;
  private hook: AuthenticateHook | undefined;
  /** The streams authenticated callers keep open, re-checked by revalidate(). */
  private readonly streams: OpenStreams<AuthenticatedCall>;

  constructor(private readonly options: AuthenticatorOptions) {
    this.tokens = this.withHostToken(
      options.tokensFile === "" ? undefined : loadTokensFile(options.tokensFile),
    );
    this.streams = new OpenStreams((call) => this.authenticate(call), options.log);
  }

  /** True when calls must authenticate: a tokens file, a hook or client certificates. */
  get enabled(): boolean {
    return this.options.tokensFile !== "" || this.hook !== undefined || this.options.clientCertificates;
  }

  /**
   * Accepts `token` as the host itself: the token every host sharing this host's store
   * forwards calls of session tools with (docs/stores.md). Whoever can read the store can
   * read it, as they can read every session.
   */
  trustPeerToken(token: string): void {
    this.peerToken = token;
    this.tokens = this.tokens.with(token, HOST.name);
  }

  /** Sets (or with undefined, removes) the application's authentication hook. */
  setHook(hook: AuthenticateHook | undefined): void {
    this.hook = hook;
  }

  /**
   * Reads the tokens file again. A file that cannot be read or parsed leaves the tokens in
   * force as they were and logs why; returns whether the new tokens took effect. Open
   * streams keep their credentials until revalidate() checks them.
   */
  reload(): boolean {
    const { tokensFile, log } = this.options;
    if (tokensFile === "") return false;
    try {
      this.tokens = this.withHostToken(loadTokensFile(tokensFile));
      log.info({ file: tokensFile, tokens: this.fileTokens }, "reloaded the tokens file");
      return true;
    } catch (error) {
      log.error(
        { err: error, file: tokensFile },
        "cannot reload the tokens file; the tokens loaded before stay in force",
      );
      return false;
    }
  }

  /**
   * authenticate() for a call that stays open (a stream): its credentials are kept, so that
   * revalidate() can check them again and revoke them. Without authentication nothing is
   * kept: ANONYMOUS cannot be revoked.
   */
  async authenticateStream(call: AuthenticatedCall): Promise<StreamCredentials> {
    if (!this.enabled) return new StreamCredentials(ANONYMOUS);
    return this.streams.authenticate(call);
  }

  /**
   * Checks the credentials of every open stream again, against the tokens and the hook as
   * they are now, and revokes those no longer accepted (`reason`, e.g. "the tokens file was
   * reloaded", goes into the status message). Resolves with how many streams were revoked.
   */
  revalidate(reason: string): Promise<number> {
    return this.streams.revalidate(reason);
  }

  /** Open streams whose credentials are kept for revalidate(). */
  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * The principal of a call: ANONYMOUS when authentication is off, else the one its
   * credentials name. Throws RpcStatusError(UNAUTHENTICATED) when they name none.
   */
  async authenticate(call: AuthenticatedCall): Promise<Principal> {
    if (!this.enabled) return ANONYMOUS;
    const token = bearerToken(call.metadata);
    if (token !== undefined) {
      const named = this.tokens.principalOf(token);
      // No file token can name "@host" (names starting with "@" are refused when loading).
      if (named === HOST.name) return HOST;
      if (named !== undefined) return this.principal(named, "token", false);
    }
    const certificate = this.options.clientCertificates ? peerCertificate(call) : undefined;
    if (this.hook !== undefined) {
      const named = await this.askHook({
        metadata: call.metadata,
        method: call.getPath(),
        token,
        certificate,
      });
      if (named !== undefined) return this.principal(named.name, "hook", named.operator === true);
    }
    if (token !== undefined) {
      throw unauthenticated("the bearer token is not valid on this host; check the token you were given");
    }
    if (certificate !== undefined) {
      const name = subjectName(certificate);
      const problem = principalNameProblem(name);
      if (problem !== undefined) throw unauthenticated(`the client certificate's subject: ${problem}`);
      return this.principal(name, "certificate", false);
    }
    throw unauthenticated(
      "this host requires authentication: send the metadata 'authorization: Bearer <token>'" +
        (this.options.clientCertificates ? " or present a client certificate" : ""),
    );
  }

  /** A principal, with the operator role when `granted` or when the tokens file grants it to `name`. */
  private principal(name: string, kind: "token" | "hook" | "certificate", granted: boolean): Principal {
    return granted || this.tokens.operators.has(name) ? { name, kind, operator: true } : { name, kind };
  }

  private withHostToken(file: TokenTable | undefined): TokenTable {
    this.fileTokens = file?.size ?? 0;
    const table = (file ?? TokenTable.of([])).with(this.hostToken, HOST.name);
    return this.peerToken === undefined ? table : table.with(this.peerToken, HOST.name);
  }

  private async askHook(request: AuthenticationRequest): Promise<HookPrincipal | undefined> {
    let answer: string | HookPrincipal | undefined;
    try {
      answer = await this.hook?.(request);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw unauthenticated(`authentication failed: ${reason.slice(0, 500)}`);
    }
    if (answer === undefined) return undefined;
    const named: HookPrincipal | undefined =
      typeof answer === "string"
        ? { name: answer }
        : typeof answer === "object" && answer !== null
          ? answer
          : undefined;
    const problem =
      typeof named?.name === "string" ? principalNameProblem(named.name) : "it is not a string or { name }";
    if (named === undefined || problem !== undefined) {
      this.options.log.error(
        { method: request.method, problem },
        "the authentication hook returned a bad principal",
      );
      throw unauthenticated(
        "authentication failed: the host's authentication hook returned no valid principal",
      );
    }
    return named;
  }
}

function peerCertificate(call: AuthenticatedCall): PeerCertificate | undefined {
  const certificate = call.getAuthContext().sslPeerCertificate;
  return certificate?.raw === undefined ? undefined : certificate;
}
