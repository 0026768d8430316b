/**
 * The inspector a host serves itself (`inspectorPort`): a gateway whose calls go through the
 * host's own gRPC port, or its internal Unix socket when it serves TLS, so the page gets
 * exactly what a client with the browser's token would get.
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Logger } from "pino";
import { tlsEnabled } from "../auth/certificates.js";
import { checkExposure } from "../auth/transport.js";
import type { HostConfig } from "../config.js";
import type { InspectorGateway } from "./gateway.js";

/**
 * Refuses an inspector on an interface other machines reach when the host has neither TLS
 * nor authentication (unless `insecure`): the gRPC port's rule, for the same reason.
 */
export function checkInspectorExposure(config: HostConfig, authentication: boolean): void {
  if (config.inspectorPort === undefined) return;
  checkExposure({
    host: config.inspectorHost,
    port: config.inspectorPort,
    metricsHost: undefined,
    tls: tlsEnabled(config),
    authentication,
    insecure: config.insecure,
  });
}

export interface HostInspectorOptions {
  readonly config: HostConfig;
  /** Where the inspector dials the host: its listening address, or the internal socket under TLS. */
  readonly clientTarget: string;
  /** The address clients use (shown in the calls the page offers to copy). */
  readonly publicTarget: string;
  readonly log: Logger;
}

/** Starts the host's inspector; over HTTPS with the host's certificate when it serves TLS. */
export async function serveHostInspector(options: HostInspectorOptions): Promise<InspectorGateway> {
  const { config } = options;
  const tls = tlsEnabled(config);
  let certificate: { cert: Buffer; key: Buffer } | undefined;
  if (tls) {
    try {
      certificate = { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) };
    } catch (error) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `the inspector cannot read the host's TLS files: ${(error as Error).message}`,
        { details: { field: "tlsCert" }, cause: error },
      );
    }
  }
  // Connect and the page's routes are loaded only for a host that serves the inspector.
  const { startGateway } = await import("./gateway.js");
  const gateway = await startGateway({
    target: options.clientTarget,
    credentials: grpc.credentials.createInsecure(),
    maxMessageBytes: config.maxMessageBytes,
    host: config.inspectorHost,
    port: config.inspectorPort ?? 0,
    ...(certificate === undefined ? {} : { tls: certificate }),
    displayTarget: options.publicTarget,
    displayTls: tls,
    log: options.log,
  });
  options.log.info({ url: gateway.url }, "toolbridge inspector serving");
  return gateway;
}
