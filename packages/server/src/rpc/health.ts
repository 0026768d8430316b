import * as grpc from "@grpc/grpc-js";
import { pb } from "@toolbridge/core";
import { RpcStatusError } from "../grpc/status.js";
import { unknownService } from "./health-status.js";
import type { RpcHost } from "./rpc-host.js";

/**
 * HealthCheck: the status of the host (""), of the ToolBridge service, or of the worker
 * pool; answered during the shutdown grace period too (NOT_SERVING). An unknown `service`
 * fails with NOT_FOUND, as grpc.health.v1's Check does.
 */
export async function healthCheck(
  host: RpcHost,
  req: pb.HealthCheckRequest,
): Promise<pb.HealthCheckResponse> {
  if (!host.health.knows(req.service)) {
    throw new RpcStatusError(grpc.status.NOT_FOUND, unknownService(host.health, req.service));
  }
  return {
    status: host.health.serving(req.service)
      ? pb.HealthCheckResponse_ServingStatus.SERVING
      : pb.HealthCheckResponse_ServingStatus.NOT_SERVING,
    version: host.version,
    uptimeMs: Date.now() - host.startedAt,
    activeSessions: await host.sessions.count(),
  };
}
