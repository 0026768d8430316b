/**
 * The ToolBridge service's handlers with a server span each, for a host that traces: the
 * span continues the caller's trace from the RPC's metadata (W3C traceparent, tracestate,
 * baggage), the handler runs with it active, so the engine's execute_tool spans nest under
 * it, and it ends with the RPC's gRPC status. Chosen once when the server is built: a host
 * that does not trace serves the handlers as they are. Calls is not wrapped: each call on
 * the stream gets a span of its own from its frame's trace context (calls.ts).
 */
import type * as grpc from "@grpc/grpc-js";
import { pb } from "@toolbridge/core";
import type { RpcSpan, Tracing } from "../tracing/contract.js";

type Handler = (...args: never[]) => unknown;

/** `implementation` with a server span around each unary and server-streaming RPC. */
export function tracedService(
  tracing: Tracing,
  implementation: grpc.UntypedServiceImplementation,
): grpc.UntypedServiceImplementation {
  const traced: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const method = (pb.ToolBridgeService as Record<string, grpc.MethodDefinition<unknown, unknown>>)[name];
    if (method === undefined || method.requestStream) {
      traced[name] = handler;
      continue;
    }
    const path = method.path.slice(1);
    traced[name] = (method.responseStream
      ? tracedServerStream(tracing, path, handler as grpc.handleServerStreamingCall<unknown, unknown>)
      : tracedUnary(
          tracing,
          path,
          handler as grpc.handleUnaryCall<unknown, unknown>,
        )) as Handler as grpc.UntypedHandleCall;
  }
  return traced;
}

function tracedUnary(
  tracing: Tracing,
  path: string,
  handler: grpc.handleUnaryCall<unknown, unknown>,
): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const span = tracing.serverSpan(path, call.metadata);
    span.within(() =>
      handler(call, (error, value, trailer, flags) => {
        if (error === null || error === undefined) span.end(0);
        else span.end(error.code ?? 2, error.details ?? ("message" in error ? error.message : undefined));
        callback(error, value, trailer, flags);
      }),
    );
  };
}

function tracedServerStream(
  tracing: Tracing,
  path: string,
  handler: grpc.handleServerStreamingCall<unknown, unknown>,
): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const span = tracing.serverSpan(path, call.metadata);
    endWithStream(span, call);
    span.within(() => handler(call));
  };
}

/** Ends `span` once the stream has sent its status, or was cancelled by the client. */
function endWithStream(span: RpcSpan, call: grpc.ServerWritableStream<unknown, unknown>): void {
  let status: { code: number; message?: string } = { code: 0 };
  let ended = false;
  const end = (code: number, message?: string) => {
    if (ended) return;
    ended = true;
    span.end(code, message);
  };
  call.once("error", (error: Partial<grpc.StatusObject> & { message?: string }) => {
    status = { code: error.code ?? 2, message: error.details ?? error.message };
  });
  call.once("finish", () => end(status.code, status.message));
  call.once("cancelled", () => end(1, "the client cancelled the stream or went away"));
}
