/** The Prometheus scrape endpoint: GET /metrics on its own small HTTP server. */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Logger } from "pino";
import type { HostMetrics } from "./metrics.js";

export interface MetricsEndpoint {
  /** e.g. "http://127.0.0.1:9464/metrics" */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Checks a scrape's `Authorization` header (undefined when it sent none); rejects with
 * the reason it is refused. Given when the endpoint requires authentication.
 */
export type ScrapeAuthorizer = (authorization: string | undefined) => Promise<void>;

/**
 * Serves GET /metrics on `host:port`; with `authorize`, a scrape it refuses is answered
 * 401 with `WWW-Authenticate: Bearer` (Prometheus sends a bearer token with
 * `authorization: { credentials_file: ... }` in its scrape config).
 */
export async function serveMetrics(
  metrics: HostMetrics,
  host: string,
  port: number,
  log: Logger,
  authorize?: ScrapeAuthorizer,
): Promise<MetricsEndpoint> {
  const scrape = (res: ServerResponse, head: boolean) => {
    metrics.exposition().then(
      (text) => {
        res.writeHead(200, { "content-type": metrics.contentType });
        res.end(head ? undefined : text);
      },
      (error: unknown) => {
        log.error({ err: error }, "collecting metrics failed");
        res
          .writeHead(500, { "content-type": "text/plain; charset=utf-8" })
          .end("collecting metrics failed\n");
      },
    );
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res
        .writeHead(404, { "content-type": "text/plain; charset=utf-8" })
        .end("not found: scrape GET /metrics\n");
      return;
    }
    const authorized = authorize === undefined ? Promise.resolve() : authorize(req.headers.authorization);
    authorized.then(
      () => scrape(res, req.method === "HEAD"),
      (error: unknown) => {
        res
          .writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": "Bearer" })
          .end(`${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  });
  // Scrapers keep connections open; they must not hold the host up at shutdown.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(
        new BridgeError(
          ErrorType.Unavailable,
          `cannot serve metrics on ${host}:${port}: ${error.message} (metricsPort / metricsHost)`,
          { cause: error },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}/metrics`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
