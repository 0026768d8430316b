import type { pb } from "@toolbridge/core";
import type { HostRuntime } from "../runtime.js";

export function getMetrics(rt: HostRuntime, _req: pb.GetMetricsRequest): Promise<pb.GetMetricsResponse> {
  return rt.metrics.snapshot();
}
