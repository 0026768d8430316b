/**
 * The inspector's server: the page (static files) and, under /api/, the Connect protocol
 * (HTTP/1.1 JSON or binary, server streams included) that the browser speaks, each call
 * forwarded to a host's gRPC service (routes.ts). `toolbridge inspect <address>` runs one
 * against any host; a host with `inspectorPort` runs one against itself.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Logger } from "pino";
import { isLoopback } from "../auth/transport.js";
import { HostChannel, type HostChannelOptions } from "./host-channel.js";
import { forwardingRoutes, InspectorCredentials } from "./routes.js";
import { DEFAULT_UI_DIRECTORY, SECURITY_HEADERS, StaticFiles } from "./static-files.js";

export interface GatewayOptions extends HostChannelOptions {
  /** Interface to listen on (loopback unless the caller checked the exposure). */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Serve HTTPS with this certificate chain and key (PEM) rather than plain HTTP. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /**
   * A bearer token to send for the page's calls when the page sends none of its own; the
   * page must then present the gateway's access key (`accessKey`, in the printed URL).
   */
  readonly token?: string;
  /** Where the built page is; by default the package's dist/inspector-ui. */
  readonly uiDirectory?: string;
  /** What the page shows as the host's address in the calls it offers to copy (default: `target`). */
  readonly displayTarget?: string;
  /** Whether clients reach that address over TLS (for the grpcurl command the page offers to copy). */
  readonly displayTls?: boolean;
  readonly log?: Logger;
}

export interface InspectorGateway {
  /** The page's address, e.g. http://127.0.0.1:43127/ (with `#key=...` when the gateway holds a token). */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Stops listening, ends the calls in flight and closes the channel to the host. */
  close(): Promise<void>;
}

/** The page's settings, served at /config.json: where the host is, for the calls it offers to copy. */
interface PageConfig {
  readonly target: string;
  readonly tls: boolean;
  /** The gateway holds a token for a page that presents its access key. */
  readonly tokenHeld: boolean;
}

/** The names a request may call a loopback gateway by: anything else is a DNS-rebinding attempt. */
function loopbackHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

/** Starts the gateway; rejects with Unavailable when it cannot listen. */
export async function startGateway(options: GatewayOptions): Promise<InspectorGateway> {
  const channel = new HostChannel(options);
  const accessKey = options.token === undefined ? undefined : randomBytes(24).toString("base64url");
  const credentials = new InspectorCredentials(options.token, accessKey);
  const shutdown = new AbortController();
  const api = connectNodeAdapter({
    routes: forwardingRoutes(channel, credentials),
    requestPathPrefix: "/api",
    // The page speaks Connect only; gRPC clients have the host's own port.
    grpc: false,
    grpcWeb: false,
    readMaxBytes: options.maxMessageBytes,
    shutdownSignal: shutdown.signal,
  });
  const files = new StaticFiles(options.uiDirectory ?? DEFAULT_UI_DIRECTORY);
  const page: PageConfig = {
    target: options.displayTarget ?? options.target,
    tls: options.displayTls ?? false,
    tokenHeld: options.token !== undefined,
  };
  let allowedHosts: Set<string> | undefined;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const refusal = refuseForeign(req, allowedHosts, options.tls !== undefined);
    if (refusal !== undefined) {
      res.writeHead(403, { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS }).end(refusal);
      return;
    }
    const pathname = new URL(req.url ?? "/", "http://inspector").pathname;
    if (pathname.startsWith("/api/")) {
      api(req, res);
    } else if (pathname === "/config.json") {
      res.writeHead(200, {
        "content-type": "application/json",
        "cache-control": "no-store",
        ...SECURITY_HEADERS,
      });
      res.end(JSON.stringify(page));
    } else {
      files.serve(req, res, pathname);
    }
  };
  const server =
    options.tls === undefined
      ? http.createServer(handle)
      : https.createServer({ cert: options.tls.cert, key: options.tls.key }, handle);
  server.listen(options.port, options.host);
  try {
    await Promise.race([
      once(server, "listening"),
      once(server, "error").then(([error]) => {
        throw error;
      }),
    ]);
  } catch (error) {
    channel.close();
    throw new BridgeError(
      ErrorType.Unavailable,
      `the inspector cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const { port } = server.address() as AddressInfo;
  if (isLoopback(options.host)) allowedHosts = loopbackHosts(port);
  const shown = options.host.includes(":") ? `[${options.host}]` : options.host;
  const base = `${options.tls === undefined ? "http" : "https"}://${shown}:${port}/`;
  return {
    url: accessKey === undefined ? base : `${base}#key=${accessKey}`,
    port,
    async close() {
      shutdown.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      channel.close();
    },
  };
}

/**
 * Why a request is refused, if it is: a Host header other than the loopback names of a
 * loopback gateway (DNS rebinding: a page of another site resolving its name to 127.0.0.1),
 * or an Origin other than the gateway's own (a page of another site posting to it).
 */
function refuseForeign(
  req: http.IncomingMessage,
  allowedHosts: Set<string> | undefined,
  tls: boolean,
): string | undefined {
  const host = req.headers.host ?? "";
  if (allowedHosts !== undefined && !allowedHosts.has(host.toLowerCase())) {
    return `this inspector answers only to ${[...allowedHosts].join(", ")}\n`;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `${tls ? "https" : "http"}://${host}`) {
    return "cross-origin requests are refused\n";
  }
  return undefined;
}
