import { pb } from "@toolbridge/core";
import type { HostRuntime } from "./runtime.js";

export async function healthCheck(
  rt: HostRuntime,
  _req: pb.HealthCheckRequest,
): Promise<pb.HealthCheckResponse> {
  return {
    status: rt.draining
      ? pb.HealthCheckResponse_ServingStatus.NOT_SERVING
      : pb.HealthCheckResponse_ServingStatus.SERVING,
    version: rt.version,
    uptimeMs: Date.now() - rt.startedAt,
    activeSessions: await rt.sessions.count(),
  };
}
