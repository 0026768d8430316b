/**
 * The bare gRPC peer: the same `toolbridge.v1.ToolBridge` messages served by a hand-written
 * @grpc/grpc-js server with no sessions, validation, limits, metrics or logging. It answers
 * the RPCs the benchmark uses with the tools' semantics hard-coded, so the gap between it
 * and the real host is what toolbridge itself costs per call.
 *
 *   node --import tsx bench/peers/grpc-echo.ts [--listen 127.0.0.1:0]   prints "listening on <address>"
 *
 * `--listen unix:/path/to.sock` serves on a Unix domain socket, as the harness runs it (the
 * host does too), so that both are dialled the same way.
 */
import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { pb, type pbValues } from "@toolbridge/core";
import { compute, flag, streamBlock } from "./semantics.js";

const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

function ok(result: pbValues.Value): pb.ToolCallResponse {
  return { success: true, result, error: undefined, requestId: "", metrics: undefined };
}

function failure(message: string): pb.ToolCallResponse {
  return {
    success: false,
    result: undefined,
    error: { type: "ToolNotFound", message, details: {}, stacktrace: "" },
    requestId: "",
    metrics: undefined,
  };
}

function intArg(value: pbValues.Value | undefined): number {
  return value?.kind?.$case === "intValue" ? Number(value.kind.value) : 0;
}

/** The tools' work on raw protocol values: echo passes the payload Value through. */
function run(toolId: string, kwargs: Record<string, pbValues.Value>): pb.ToolCallResponse {
  if (toolId === "echo") {
    const payload = kwargs.payload;
    const text = payload?.kind?.$case === "stringValue" ? payload.kind.value : "";
    return ok({ kind: { $case: "stringValue", value: text } });
  }
  if (toolId === "compute") {
    return ok({ kind: { $case: "intValue", value: BigInt(compute(intArg(kwargs.n))) } });
  }
  return failure(`no tool ${toolId}`);
}

let sessions = 0;

const implementation: grpc.UntypedServiceImplementation = {
  initializeSession(
    call: grpc.ServerUnaryCall<pb.InitializeSessionRequest, pb.InitializeSessionResponse>,
    callback: grpc.sendUnaryData<pb.InitializeSessionResponse>,
  ) {
    sessions += 1;
    callback(null, {
      success: true,
      error: undefined,
      sessionId: call.request.sessionId || `bare_${sessions}`,
      toolCount: 3,
      capabilities: [],
      created: true,
    });
  },
  cleanupSession(
    _call: grpc.ServerUnaryCall<pb.CleanupSessionRequest, pb.StatusResponse>,
    callback: grpc.sendUnaryData<pb.StatusResponse>,
  ) {
    callback(null, { success: true, error: undefined });
  },
  executeTool(
    call: grpc.ServerUnaryCall<pb.ToolCallRequest, pb.ToolCallResponse>,
    callback: grpc.sendUnaryData<pb.ToolCallResponse>,
  ) {
    const response = run(call.request.toolId, call.request.kwargs);
    response.requestId = call.request.requestId;
    callback(null, response);
  },
  batchExecuteTools(
    call: grpc.ServerUnaryCall<pb.BatchToolCallRequest, pb.BatchToolCallResponse>,
    callback: grpc.sendUnaryData<pb.BatchToolCallResponse>,
  ) {
    const results = call.request.items.map((item, position) => {
      const response = run(item.toolId, item.kwargs);
      return {
        index: item.index ?? position,
        success: response.success,
        result: response.result,
        error: response.error,
        metrics: undefined,
      };
    });
    callback(null, {
      success: true,
      error: undefined,
      batchId: call.request.batchId,
      results,
      metrics: undefined,
    });
  },
  async streamTool(call: grpc.ServerWritableStream<pb.ToolStreamRequest, pb.ToolStreamChunk>) {
    const { streamId, kwargs } = call.request;
    const chunks = intArg(kwargs.chunks);
    const block = Buffer.from(streamBlock(intArg(kwargs.chunk_bytes)));
    let sequence = 0;
    for (; sequence < chunks && !call.cancelled; sequence++) {
      const more = call.write({
        streamId,
        sequence,
        content: { $case: "data", value: { kind: { $case: "bytesValue", value: block } } },
      });
      // Respect back-pressure like any real server must, or a slow reader grows our memory.
      if (!more) await once(call, "drain");
    }
    call.write({
      streamId,
      sequence,
      content: { $case: "complete", value: { totalChunks: sequence, metrics: undefined } },
    });
    call.end();
  },
  /** The multiplexed call stream: each call answered at once (the tools are synchronous), tagged by its call id. */
  calls(call: grpc.ServerDuplexStream<pb.CallFrame, pb.CallAnswer>) {
    call.on("data", (frame: pb.CallFrame) => {
      if (frame.frame?.$case !== "call") return;
      const request = frame.frame.value;
      const response = run(request.toolId, request.kwargs);
      response.requestId = request.requestId;
      call.write({ callId: frame.callId, response });
    });
    call.on("end", () => call.end());
  },
};

const server = new grpc.Server({
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
});
server.addService(pb.ToolBridgeService as unknown as grpc.ServiceDefinition, implementation);
const listen = flag("listen", "127.0.0.1:0");
const port = await new Promise<number>((resolve, reject) => {
  server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  );
});
const address = listen.startsWith("unix:") ? listen : listen.replace(/:\d+$/, `:${port}`);
process.stdout.write(`listening on ${address}\n`);
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => server.tryShutdown(() => process.exit(0)));
}
