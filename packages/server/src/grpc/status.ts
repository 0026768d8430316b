import type * as grpc from "@grpc/grpc-js";

/**
 * Thrown by an RPC handler to answer with a gRPC status instead of a response, for the
 * few answers the contract gives as a status (e.g. HealthCheck of an unknown service).
 */
export class RpcStatusError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = "RpcStatusError";
  }
}
