/**
 * StreamTool: zero or more data chunks, then one complete or error chunk. The engine
 * pulls the tool only as fast as the client reads (write() returning false pauses it),
 * and aborts it when the client cancels or disconnects.
 */
import type * as grpc from "@grpc/grpc-js";
import { asBuffer, BridgeError, ErrorType, pb, type pbValues } from "@toolbridge/core";
import type { StreamCredentials } from "../auth/open-streams.js";
import { type ChunkSink, errorInfo, newId } from "../tools/engine.js";
import { chosenRequestId, contextOf } from "./call-context.js";
import type { RpcHost } from "./rpc-host.js";
import { writable } from "./writable.js";

type ChunkStream = grpc.ServerWritableStream<pb.ToolStreamRequest, Buffer>;

function encodeChunk(chunk: pb.ToolStreamChunk): Buffer {
  return asBuffer(pb.ToolStreamChunk.encode(chunk).finish());
}

/**
 * The StreamTool handler. When the stream's credentials are revoked it ends at once with
 * their status (UNAUTHENTICATED), and its tool is aborted with a Cancelled error saying why.
 */
export async function streamTool(
  host: RpcHost,
  call: ChunkStream,
  credentials: StreamCredentials,
): Promise<void> {
  const { principal } = credentials;
  const req = call.request;
  const streamId = req.streamId || newId("stream");
  // Without one from the client, the stream id doubles as the request id.
  const requestId = chosenRequestId(req.requestId, call.metadata) ?? streamId;
  const ctx = contextOf(host, call, requestId, { request_id: requestId, stream_id: streamId }, principal);
  const limit = host.config.maxMessageBytes;
  // Chunks are encoded here, where their size on the wire is known; write() returning
  // false asks the engine to wait until the client has read.
  const sink: ChunkSink = (data: pbValues.Value, sequence: number) => {
    const bytes = encodeChunk({ streamId, sequence, content: { $case: "data", value: data } });
    if (bytes.length > limit) {
      throw new BridgeError(
        ErrorType.ResourceExhausted,
        `chunk ${sequence} of tool '${req.toolId}' is ${bytes.length} bytes, over the host's ` +
          `${limit}-byte message limit (maxMessageBytes); send smaller chunks`,
        { details: { size: String(bytes.length), limit: String(limit) } },
      );
    }
    return call.write(bytes) ? undefined : writable(call);
  };
  let closeStream: () => void = () => {};
  credentials.onRevoked((revocation) => {
    ctx.cancellation.cancel(
      new BridgeError(ErrorType.Cancelled, `the stream's credentials were revoked: ${revocation.details}`, {
        details: { reason: "credentials_revoked" },
      }),
    );
    if (!call.cancelled) call.emit("error", revocation);
  });
  try {
    try {
      closeStream = host.streams.open(req.sessionId, principal);
    } catch (error) {
      // Over a stream quota: the error chunk is the whole answer.
      call.write(
        encodeChunk({ streamId, sequence: 0, content: { $case: "error", value: errorInfo(host, error) } }),
      );
      return;
    }
    const outcome = await host.engine.stream(req, ctx, sink);
    if (call.cancelled || credentials.revoked !== undefined) return;
    const sequence = outcome.chunks;
    call.write(
      encodeChunk(
        outcome.success
          ? {
              streamId,
              sequence,
              content: { $case: "complete", value: { totalChunks: sequence, metrics: outcome.metrics } },
            }
          : { streamId, sequence, content: { $case: "error", value: outcome.error } },
      ),
    );
  } finally {
    closeStream();
    ctx.release();
    if (!call.cancelled && credentials.revoked === undefined) call.end();
  }
}
