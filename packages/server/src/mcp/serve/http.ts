/**
 * The MCP Streamable HTTP endpoint (`mcpPort`, off by default). Every request is checked
 * against DNS rebinding (Host and Origin), authenticated like a gRPC call (bearer tokens,
 * the application's hook, client certificates), scoped to the global tools or to the
 * toolbridge session its path or header names, and then routed by protocol era: 2026-07-28
 * requests to the SDK's per-request handler, 2025-era ones to sessionful transports.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { toNodeHandler } from "@modelcontextprotocol/node";
import {
  type AuthInfo,
  createMcpHandler,
  isJsonContentType,
  isLegacyRequest,
  type McpHttpHandler,
  validateHostHeader,
  validateOriginHeader,
} from "@modelcontextprotocol/server";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Principal } from "../../auth/principal.js";
import type { McpEngine } from "../engine.js";
import { allowedHostnames, type HttpExposure } from "./allowed-hosts.js";
import { jsonRpcError } from "./http-replies.js";
import { LegacyInstances } from "./legacy-instances.js";
import { LegacySessions } from "./legacy-sessions.js";
import { ListenFeed } from "./listen-feed.js";
import { headersOnly, readJsonBody } from "./request-body.js";
import type { Scope } from "./scope.js";
import { buildServer } from "./server.js";

/** The header naming the toolbridge session a request works in (the path can name it too). */
export const SESSION_HEADER = "toolbridge-session";

export interface McpHttpOptions extends HttpExposure {
  /** The endpoint's path, e.g. "/mcp"; `<path>/sessions/<id>` works inside session `<id>`. */
  readonly path: string;
  /** TLS: the host's certificate and key files (and the CA client certificates must come from). */
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string } | undefined;
  readonly maxSessions: number;
  readonly idleTimeoutMs: number;
}

type AuthedRequest = IncomingMessage & { auth?: AuthInfo };

export class McpHttpEndpoint {
  readonly url: string;
  private readonly modern: McpHttpHandler;
  private readonly serveModern: ReturnType<typeof toNodeHandler>;
  private readonly legacy: LegacySessions;
  private readonly instances = new LegacyInstances();
  private readonly feed: ListenFeed;

  private constructor(
    private readonly engine: McpEngine,
    private readonly options: McpHttpOptions,
    private readonly server: ReturnType<typeof createHttpServer> | HttpsServer,
    private readonly hostnames: readonly string[],
  ) {
    const maxRequestBodySize = engine.config.maxMessageBytes;
    this.modern = createMcpHandler(({ authInfo }) => buildServer(engine, scopeOf(authInfo), "modern"), {
      legacy: "reject",
      maxRequestBodySize,
      onerror: (error) => this.reportError(error),
    });
    this.serveModern = toNodeHandler(this.modern, { maxRequestBodySize });
    this.legacy = new LegacySessions(engine, this.instances, {
      maxSessions: options.maxSessions,
      idleTimeoutMs: options.idleTimeoutMs,
      maxBodyBytes: maxRequestBodySize,
    });
    this.feed = new ListenFeed(engine, (uri) => this.modern.notify.resourceUpdated(uri));
    const address = server.address() as AddressInfo;
    const host = options.host.includes(":") ? `[${options.host}]` : options.host;
    this.url = `${options.tls === undefined ? "http" : "https"}://${host}:${address.port}${options.path}`;
  }

  /** Binds and serves; rejects with Unavailable naming the address when it cannot. */
  static async start(engine: McpEngine, options: McpHttpOptions): Promise<McpHttpEndpoint> {
    const server =
      options.tls === undefined ? createHttpServer() : createHttpsServer(secureOptions(options.tls));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) =>
        reject(
          new BridgeError(
            ErrorType.Unavailable,
            `cannot serve MCP on ${options.host}:${options.port}: ${error.message} (mcpPort / mcpHost)`,
            { cause: error },
          ),
        ),
      );
      server.listen(options.port, options.host, () => resolve());
    });
    const endpoint = new McpHttpEndpoint(engine, options, server, allowedHostnames(options));
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      endpoint.handle(req, res).catch((error: unknown) => {
        endpoint.reportError(error);
        jsonRpcError(res, 500, -32603, "internal error");
      });
    });
    return endpoint;
  }

  /** Tells the clients that listen for it that the tool list changed (a mount came or went). */
  toolsChanged(): void {
    this.modern.notify.toolsChanged();
    this.instances.toolsChanged();
  }

  /** Reads the TLS files again: new connections get the new certificate. */
  reloadTls(): void {
    const { tls } = this.options;
    if (tls !== undefined) (this.server as HttpsServer).setSecureContext(secureOptions(tls));
  }

  async close(): Promise<void> {
    this.feed.close();
    await this.legacy.close();
    await this.modern.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: AuthedRequest, res: ServerResponse): Promise<void> {
    const sessionId = this.sessionOf(req, res);
    if (sessionId === undefined || !this.checkOrigin(req, res)) return;
    let principal: Principal;
    try {
      principal = await this.engine.authenticate({
        authorization: req.headers.authorization,
        certificate: peerCertificate(req),
        method: `${req.method ?? "GET"} ${this.options.path}`,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      jsonRpcError(res, 401, -32001, message, { "www-authenticate": 'Bearer realm="toolbridge"' });
      return;
    }
    const scope: Scope = { principal, sessionId };
    req.auth = { token: "", clientId: principal.name, scopes: [], extra: { scope } };
    if (req.method !== "POST") {
      await this.legacy.handle(req, res, undefined, scope);
      return;
    }
    if (!isJsonContentType(req.headers["content-type"] ?? null)) {
      jsonRpcError(res, 415, -32000, "Unsupported Media Type: POST a JSON-RPC message as application/json");
      return;
    }
    const body = await readJsonBody(req, res, this.engine.config.maxMessageBytes);
    if (body === undefined) return;
    if (await isLegacyRequest(headersOnly(req), body.value)) {
      await this.legacy.handle(req, res, body.value, scope);
      return;
    }
    const release = await this.listenTo(body.value, principal, res);
    if (release === false) return;
    res.once("close", release);
    await this.serveModern(req, res, body.value);
  }

  /**
   * The toolbridge session a request works in: `<path>/sessions/<id>` or the session
   * header ("" for neither); undefined (answered 404 or 400) when the path is not the
   * endpoint's or the two disagree.
   */
  private sessionOf(req: IncomingMessage, res: ServerResponse): string | undefined {
    const path = (req.url ?? "").split("?")[0] ?? "";
    const base = this.options.path;
    let fromPath = "";
    if (path.startsWith(`${base}/sessions/`)) {
      fromPath = decodeSegment(path.slice(base.length + "/sessions/".length));
    } else if (path !== base) {
      res
        .writeHead(404, { "content-type": "text/plain; charset=utf-8" })
        .end(`not found: MCP is served at ${base}\n`);
      return undefined;
    }
    const header = req.headers[SESSION_HEADER];
    const fromHeader = typeof header === "string" ? header : "";
    if (fromPath !== "" && fromHeader !== "" && fromPath !== fromHeader) {
      jsonRpcError(
        res,
        400,
        -32000,
        `the path names session '${fromPath}' and the ${SESSION_HEADER} header another`,
      );
      return undefined;
    }
    return fromPath || fromHeader;
  }

  /** DNS rebinding: the Host must be one the endpoint is reached at, an Origin one allowed. */
  private checkOrigin(req: IncomingMessage, res: ServerResponse): boolean {
    const host = validateHostHeader(req.headers.host, [...this.hostnames]);
    if (!host.ok) {
      jsonRpcError(res, 403, -32000, `Forbidden: ${host.message} (mcpAllowedHosts)`);
      return false;
    }
    const origin = validateOriginHeader(req.headers.origin, [
      ...this.hostnames,
      ...this.options.allowedOrigins,
    ]);
    if (!origin.ok) {
      jsonRpcError(res, 403, -32000, `Forbidden: ${origin.message} (mcpAllowedOrigins)`);
      return false;
    }
    return true;
  }

  /**
   * A `subscriptions/listen` naming resources: watches them while its stream is open.
   * Resolves with the release to call when the response closes, or false when the request
   * was refused (answered here).
   */
  private async listenTo(
    body: unknown,
    principal: Principal,
    res: ServerResponse,
  ): Promise<(() => void) | false> {
    const uris = listenedResources(body);
    if (uris.length === 0) return () => {};
    try {
      return await this.feed.listen(principal, uris);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      jsonRpcError(res, 200, -32002, message);
      return false;
    }
  }

  private reportError(error: unknown): void {
    this.engine.log.debug({ err: error }, "MCP endpoint error");
  }
}

function scopeOf(authInfo: AuthInfo | undefined): Scope {
  const scope = authInfo?.extra?.scope as Scope | undefined;
  if (scope === undefined) throw new Error("an MCP request reached the server factory unauthenticated");
  return scope;
}

/** The resource URIs a modern `subscriptions/listen` request asks to hear about. */
function listenedResources(body: unknown): string[] {
  if (
    typeof body !== "object" ||
    body === null ||
    (body as { method?: unknown }).method !== "subscriptions/listen"
  ) {
    return [];
  }
  const params = (body as { params?: { notifications?: { resourceSubscriptions?: unknown } } }).params;
  const uris = params?.notifications?.resourceSubscriptions;
  return Array.isArray(uris) ? uris.filter((uri): uri is string => typeof uri === "string") : [];
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function secureOptions(tls: NonNullable<McpHttpOptions["tls"]>) {
  const withCa = tls.clientCa === "" ? {} : { ca: readFileSync(tls.clientCa), requestCert: true };
  // A client without a certificate may still authenticate with a token.
  return { cert: readFileSync(tls.cert), key: readFileSync(tls.key), rejectUnauthorized: false, ...withCa };
}

function peerCertificate(req: IncomingMessage) {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.authorized !== true || socket.getPeerCertificate === undefined) return undefined;
  const certificate = socket.getPeerCertificate();
  return certificate.raw === undefined ? undefined : certificate;
}
