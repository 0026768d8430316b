import type * as grpc from "@grpc/grpc-js";
import { asBuffer, BridgeError, ErrorType, pb } from "@toolbridge/core";
import { UNRESOLVED_TOOL } from "../metrics/metrics.js";
import { errorInfo, type HostRuntime, newId } from "../runtime.js";
import type { ToolInvocation } from "../tools/executor.js";
import { admit, type Permit } from "../tools/limits.js";
import { callLogger, cancellationReason, requestIdOf } from "./execute.js";
import { CANCELLED_BY_CLIENT, encodeResult, prepareInvocation } from "./tools.js";
import { writable } from "./writable.js";

type ChunkStream = grpc.ServerWritableStream<pb.ToolStreamRequest, Buffer>;

function encodeChunk(chunk: pb.ToolStreamChunk): Buffer {
  return asBuffer(pb.ToolStreamChunk.encode(chunk).finish());
}

/**
 * StreamTool: zero or more data chunks, then one complete or error chunk. The tool is
 * pulled only as fast as the client reads (write() returning false pauses it), and its
 * AbortSignal fires when the client cancels or disconnects.
 */
export async function streamTool(rt: HostRuntime, call: ChunkStream): Promise<void> {
  const req = call.request;
  const streamId = req.streamId || newId("stream");
  // Without one from the client, the stream id doubles as the request id.
  const requestId = requestIdOf(req.requestId, call.metadata, "stream", streamId);
  const log = callLogger(rt.log, { request_id: requestId, stream_id: streamId });
  const started = performance.now();
  let sequence = 0;
  let invocation: ToolInvocation | undefined;
  let permit: Permit | undefined;
  const onCancelled = () => invocation?.abort(cancellationReason(call.getDeadline()));
  call.once("cancelled", onCancelled);

  let iterator: ReturnType<ToolInvocation["stream"]> | undefined;
  try {
    invocation = await prepareInvocation(rt, req, requestId, call.getDeadline());
    permit = admit(invocation.tool);
    iterator = invocation.stream();
    for (;;) {
      const step = await iterator.next();
      if (call.cancelled) throw cancellationReason(call.getDeadline());
      if (step.done) break;
      const chunk = encodeChunk({
        streamId,
        sequence: sequence++,
        content: { $case: "data", value: encodeResult(invocation.tool, step.value) },
      });
      if (chunk.length > rt.config.maxMessageBytes) {
        throw new BridgeError(
          ErrorType.ResourceExhausted,
          `chunk ${sequence - 1} of tool '${invocation.tool.name}' is ${chunk.length} bytes, over the ` +
            `host's ${rt.config.maxMessageBytes}-byte message limit (maxMessageBytes); send smaller chunks`,
          { details: { size: String(chunk.length), limit: String(rt.config.maxMessageBytes) } },
        );
      }
      rt.metrics.recordStreamChunk(invocation.tool.name);
      if (!call.write(chunk)) await writable(call);
    }
    const durationMs = invocation.elapsedMs();
    call.write(
      encodeChunk({
        streamId,
        sequence,
        content: {
          $case: "complete",
          value: { totalChunks: sequence, metrics: { durationMs, hostMs: performance.now() - started } },
        },
      }),
    );
    rt.metrics.recordCall(invocation.tool.name, undefined, durationMs);
    log.debug(
      { sessionId: req.sessionId, tool: req.toolId, chunks: sequence, durationMs },
      "stream completed",
    );
    iterator = undefined;
  } catch (error) {
    const info = errorInfo(rt, error);
    const tool =
      invocation?.tool.name ?? rt.tools.resolve(req.sessionId, req.toolId)?.name ?? UNRESOLVED_TOOL;
    rt.metrics.recordCall(tool, info.type, permit === undefined ? undefined : invocation?.elapsedMs());
    if (call.cancelled) return;
    // A failure the tool did not cause by itself (e.g. an oversized chunk) must still stop it.
    invocation?.abort(error instanceof BridgeError ? error : CANCELLED_BY_CLIENT());
    log.debug(
      { sessionId: req.sessionId, tool: req.toolId, error: info.type, message: info.message },
      "stream failed",
    );
    call.write(encodeChunk({ streamId, sequence, content: { $case: "error", value: info } }));
  } finally {
    permit?.release();
    call.removeListener("cancelled", onCancelled);
    iterator?.close();
    if (!call.cancelled) call.end();
  }
}
