/**
 * Starting to serve: the gRPC server and its services, the metrics endpoint, the workers,
 * the addresses bound (the configured one, and the Unix socket of the host's own clients)
 * and the web inspector. Whatever was started is stopped again when a later step fails.
 */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType } from "@toolbridge/core";
import { tlsEnabled } from "../auth/certificates.js";
import { requireAuthentication } from "../auth/guard.js";
import { checkExposure, isUnixAddress } from "../auth/transport.js";
import type { InspectorGateway } from "../inspector/gateway.js";
import { checkInspectorExposure, serveHostInspector } from "../inspector/host-inspector.js";
import { type MetricsEndpoint, serveMetrics } from "../metrics/http.js";
import { scrapeAuthorizer } from "../metrics/scrape-auth.js";
import { serviceDefinition, serviceImplementation } from "../rpc/service.js";
import { tracedService } from "../rpc/traced.js";
import { ValueCounter } from "../rpc/value-budget.js";
import { DESCRIPTOR_SET, type HostParts } from "./compose.js";
import type { ListeningAddress } from "./options.js";
import { type PrivateDir, prepareWorkers } from "./workers.js";

/** What a started host holds until it stops. */
export interface Serving {
  readonly server: grpc.Server;
  readonly listening: ListeningAddress;
  /**
   * The Unix socket of the host's own clients (see ToolBridgeHost.clientTarget) when it
   * serves TLS or has workers, in the private directory (which also holds its workers' sockets).
   */
  readonly internalSocket: string | undefined;
  readonly privateDir: PrivateDir;
  readonly metricsEndpoint: MetricsEndpoint | undefined;
  /** The web inspector, when `inspectorPort` is set. */
  readonly inspector: InspectorGateway | undefined;
}

/**
 * Serves the host's parts: refuses an exposed bind without TLS or authentication
 * (checkExposure), reads the TLS files, serves /metrics, starts the workers and binds.
 * Rejects with ValidationError (configuration, TLS files) or Unavailable (an address in
 * use), having stopped whatever it had started.
 */
export async function startServing(parts: HostParts): Promise<Serving> {
  const { config, auth, log } = parts;
  const server = grpcServer(parts);
  const tls = tlsEnabled(config);
  checkExposure({
    host: config.host,
    port: config.port,
    metricsHost: config.metricsPort === undefined ? undefined : config.metricsHost,
    tls,
    authentication: auth.enabled,
    insecure: config.insecure,
  });
  checkInspectorExposure(config, auth.enabled);
  parts.mcp.checkExposure(tls, auth.enabled);
  const credentials = parts.credentials.serverCredentials();
  const metricsEndpoint =
    config.metricsPort === undefined
      ? undefined
      : await serveMetrics(
          parts.metrics,
          config.metricsHost,
          config.metricsPort,
          log,
          config.metricsRequiresAuth && auth.enabled ? scrapeAuthorizer(auth) : undefined,
        );
  let privateDir: PrivateDir | undefined;
  try {
    privateDir = await prepareWorkers(parts, tls);
    await parts.mcp.start(tls);
  } catch (error) {
    await parts.mcp.stop();
    await parts.workers.stop({ graceMs: 0 });
    await metricsEndpoint?.close();
    privateDir?.remove();
    throw error;
  }
  try {
    const port = await listen(server, bindAddress(config), credentials);
    if (privateDir.socket !== undefined) {
      await listen(server, `unix:${privateDir.socket}`, grpc.ServerCredentials.createInsecure());
    }
    const listening = isUnixAddress(config.host)
      ? { host: config.host, port: 0, target: config.host }
      : { host: config.host, port, target: bindAddress({ host: config.host, port }) };
    const inspector = await serveInspector(parts, listening.target, privateDir.socket);
    return { server, listening, internalSocket: privateDir.socket, privateDir, metricsEndpoint, inspector };
  } catch (error) {
    server.forceShutdown();
    await parts.mcp.stop();
    await metricsEndpoint?.close();
    await parts.workers.stop({ graceMs: 0 });
    privateDir.remove();
    throw error;
  }
}

/**
 * The web inspector when `inspectorPort` is set: it dials the host where its own clients do
 * (the internal socket when there is one, else `target`) and shows clients `target`.
 */
async function serveInspector(
  parts: HostParts,
  target: string,
  internalSocket: string | undefined,
): Promise<InspectorGateway | undefined> {
  const { config, log } = parts;
  if (config.inspectorPort === undefined) return undefined;
  return serveHostInspector({
    config,
    clientTarget: internalSocket === undefined ? target : `unix:${internalSocket}`,
    publicTarget: target,
    log,
  });
}

/** The gRPC server with the host's services: ToolBridge (guarded by the message and Value limits), health, reflection. */
function grpcServer(parts: HostParts): grpc.Server {
  const { config, auth, log } = parts;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
    "grpc.keepalive_time_ms": config.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": config.keepaliveTimeoutMs,
  });
  const valueBudget = ValueCounter.fromDescriptorSet(DESCRIPTOR_SET).requestCheck(config.maxValueNodes);
  const implementation = serviceImplementation(parts.rpc);
  const tracing = parts.tracing.current;
  server.addService(
    serviceDefinition(config.maxMessageBytes, valueBudget),
    tracing === undefined ? implementation : tracedService(tracing, implementation),
  );
  const guard = (definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) =>
    requireAuthentication(definition, implementation, auth, log);
  parts.standardHealth.addTo(server, config.healthRequiresAuth ? guard : undefined);
  parts.reflection.addTo(server, config.reflectionRequiresAuth ? guard : undefined);
  return server;
}

/** Binds `server` to `address`; resolves with the bound port, rejects with Unavailable naming the address. */
function listen(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (error, bound) => {
      if (error === null) resolve(bound);
      else
        reject(
          new BridgeError(ErrorType.Unavailable, `cannot listen on ${address}: ${error.message}`, {
            cause: error,
          }),
        );
    });
  });
}

/** What grpc-js binds: a `unix:` address as it is, else "host:port" (IPv6 in brackets). */
function bindAddress({ host, port }: { host: string; port: number }): string {
  if (isUnixAddress(host)) return host;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
