/**
 * 2025-era clients over HTTP: one sessionful Streamable HTTP transport and server instance
 * per `Mcp-Session-Id`, so that their cancellations and resource subscriptions reach the
 * instance serving their calls (a stateless instance per request loses both). The sessions
 * hold memory a client makes the host keep: they are bounded in number (a new one closes the
 * one idle longest when the bound is reached) and expire when idle.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { NodeStreamableHTTPServerTransport } from "@modelcontextprotocol/node";
import type { AuthInfo } from "@modelcontextprotocol/server";
import { BridgeError } from "@toolbridge/core";
import type { McpEngine } from "../engine.js";
import { jsonRpcError } from "./http-replies.js";
import type { LegacyInstances } from "./legacy-instances.js";
import type { Scope } from "./scope.js";
import { buildServer } from "./server.js";

interface LegacySession {
  readonly transport: NodeStreamableHTTPServerTransport;
  readonly scope: Scope;
  /**
   * Requests running on the session; an idle session has none. Its GET stream (where the
   * server's own notifications go) does not count: a session only listening is idle.
   */
  open: number;
  lastUsed: number;
}

export interface LegacySessionOptions {
  /** Most sessions open at once; an initialize beyond it is refused with 503. */
  readonly maxSessions: number;
  /** A session with no open request for this long is closed (the client initializes again). */
  readonly idleTimeoutMs: number;
  readonly maxBodyBytes: number;
}

export class LegacySessions {
  private readonly sessions = new Map<string, LegacySession>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly engine: McpEngine,
    private readonly instances: LegacyInstances,
    private readonly options: LegacySessionOptions,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(options.idleTimeoutMs, 60_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Serves one 2025-era request: on the session its `Mcp-Session-Id` names (which must
   * have been opened by the same principal, in the same scope), or a new one for an
   * initialize without one.
   */
  async handle(
    req: IncomingMessage & { auth?: AuthInfo },
    res: ServerResponse,
    body: unknown,
    scope: Scope,
  ): Promise<void> {
    const id = req.headers["mcp-session-id"];
    if (typeof id === "string") {
      const session = this.sessions.get(id);
      if (
        session === undefined ||
        session.scope.principal.name !== scope.principal.name ||
        session.scope.sessionId !== scope.sessionId
      ) {
        jsonRpcError(res, 404, -32001, "Session not found: initialize again");
        return;
      }
      await this.serve(session, req, res, body);
      return;
    }
    if (req.method !== "POST") {
      jsonRpcError(res, 400, -32000, "Bad Request: no Mcp-Session-Id header; initialize first");
      return;
    }
    if (this.sessions.size >= this.options.maxSessions && !this.evictIdlest()) {
      this.engine.log.warn(
        { limit: this.options.maxSessions },
        "refused an MCP session: mcpMaxSessions reached",
      );
      jsonRpcError(
        res,
        503,
        -32000,
        `the host has ${this.sessions.size} MCP sessions in use, its limit (mcpMaxSessions); retry later`,
      );
      return;
    }
    if (scope.sessionId !== "") {
      try {
        await this.engine.checkSession(scope.sessionId, scope.principal);
      } catch (error) {
        const type = error instanceof BridgeError ? `${error.type}: ` : "";
        jsonRpcError(res, 404, -32002, `${type}${error instanceof Error ? error.message : String(error)}`);
        return;
      }
    }
    await this.openSession(req, res, body, scope);
  }

  private async openSession(
    req: IncomingMessage & { auth?: AuthInfo },
    res: ServerResponse,
    body: unknown,
    scope: Scope,
  ): Promise<void> {
    const server = buildServer(this.engine, scope, "legacy");
    let initialized = false;
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      maxRequestBodySize: this.options.maxBodyBytes,
      onsessioninitialized: (id) => {
        initialized = true;
        this.sessions.set(id, session);
      },
      onsessionclosed: (id) => {
        this.sessions.delete(id);
      },
    });
    const session: LegacySession = { transport, scope, open: 0, lastUsed: Date.now() };
    transport.onclose = () => {
      if (transport.sessionId !== undefined) this.sessions.delete(transport.sessionId);
    };
    this.instances.add(server);
    await server.connect(transport);
    await this.serve(session, req, res, body);
    // A request that did not initialize leaves no session behind.
    if (!initialized) await server.close();
  }

  private async serve(session: LegacySession, req: IncomingMessage, res: ServerResponse, body: unknown) {
    session.lastUsed = Date.now();
    if (req.method !== "GET") {
      session.open++;
      res.once("close", () => {
        session.open--;
        session.lastUsed = Date.now();
      });
    }
    await session.transport.handleRequest(req, res, body);
  }

  /**
   * Makes room for a new session by closing the one idle longest (its client initializes
   * again when it comes back); false when every session has a request running.
   */
  private evictIdlest(): boolean {
    let idlest: [string, LegacySession] | undefined;
    for (const entry of this.sessions) {
      if (entry[1].open === 0 && (idlest === undefined || entry[1].lastUsed < idlest[1].lastUsed))
        idlest = entry;
    }
    if (idlest === undefined) return false;
    this.sessions.delete(idlest[0]);
    idlest[1].transport.close().catch(() => {});
    return true;
  }

  private sweep(): void {
    const before = Date.now() - this.options.idleTimeoutMs;
    for (const [id, session] of this.sessions) {
      if (session.open > 0 || session.lastUsed > before) continue;
      this.sessions.delete(id);
      session.transport.close().catch(() => {});
    }
  }

  /** Closes every session (the host is stopping). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const open = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(open.map((session) => session.transport.close()));
  }
}
