import type { pb } from "@toolbridge/core";
import type { RpcHost } from "./rpc-host.js";

export function getMetrics(host: RpcHost, _req: pb.GetMetricsRequest): Promise<pb.GetMetricsResponse> {
  return host.metrics.snapshot();
}
