/** Client side of StreamTool: the chunks of one streamed call, with the idle watchdog. */
import * as grpc from "@grpc/grpc-js";
import {
  BridgeError,
  type DecodeOptions,
  decodeValue,
  ErrorType,
  errorFromInfo,
  type NativeValue,
  type pb,
} from "@toolbridge/core";
import type { StreamOptions } from "./options.js";
import { type ClientTransport, callOptions, communicationError, DEADLINE_SLACK_MS } from "./transport.js";

/**
 * The decoded chunks of `request`'s stream. Leaving the loop early (break, return, throw)
 * cancels the call. Each wait for the next chunk is bounded by the request's idle timeout
 * plus a second's slack: a longer one (a host that stopped answering) cancels the call and
 * throws CommunicationError with DEADLINE_EXCEEDED.
 */
export async function* streamChunks(
  transport: ClientTransport,
  request: pb.ToolStreamRequest,
  options: StreamOptions,
  decodeOptions: DecodeOptions,
): AsyncGenerator<NativeValue, void, undefined> {
  const { toolId, idleTimeoutMs } = request;
  const call = transport.stub.streamTool(request, new grpc.Metadata(), callOptions(options));
  const onAbort = () => call.cancel();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  let idle = false;
  const chunks = (call as AsyncIterable<pb.ToolStreamChunk>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      // Only the wait for the next chunk counts, not the time the consumer spends on one.
      const watchdog = setTimeout(() => {
        idle = true;
        call.cancel();
      }, idleTimeoutMs + DEADLINE_SLACK_MS);
      const step = await chunks.next().finally(() => clearTimeout(watchdog));
      if (step.done === true) break;
      const content = step.value.content;
      if (content?.$case === "data") {
        yield decodeValue(content.value, decodeOptions);
      } else if (content?.$case === "error") {
        finished = true;
        throw errorFromInfo(content.value);
      } else if (content?.$case === "complete") {
        finished = true;
        return;
      }
    }
    finished = true;
    throw new BridgeError(
      ErrorType.CommunicationError,
      `stream of '${toolId}' ended without a complete chunk`,
    );
  } catch (error) {
    if (idle) {
      throw communicationError(toolId, {
        code: grpc.status.DEADLINE_EXCEEDED,
        details: `no chunk within ${idleTimeoutMs + DEADLINE_SLACK_MS} ms (the idle timeout plus slack); the stream was cancelled`,
      });
    }
    throw error instanceof BridgeError ? error : communicationError(toolId, error);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (!finished) call.cancel();
  }
}
