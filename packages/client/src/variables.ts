/** Client side of the session-variable RPCs: request building and the watch stream. */
import type * as grpc from "@grpc/grpc-js";
import {
  BridgeError,
  constraintsToPb,
  type DecodeOptions,
  ErrorType,
  pb,
  type VariableConstraints,
  type VariableUpdate,
  type VariableWatcher,
  variableUpdateFromPb,
} from "@toolbridge/core";

/** What the host's ready header is called and says (see WatchSessionVariables). */
const WATCH_READY_HEADER = "x-toolbridge-watch";

/** Metadata of a write: who writes, tags, and for a declaration the type and constraints. */
export function writeMetadata(
  tags: Readonly<Record<string, string>> | undefined,
  type = "",
  constraints?: VariableConstraints,
): pb.VariableMetadata {
  let encoded: pb.VariableConstraints | undefined;
  try {
    encoded = constraints === undefined ? undefined : constraintsToPb(constraints);
  } catch (error) {
    if (error instanceof BridgeError) {
      throw new BridgeError(ErrorType.ValidationError, `a choice: ${error.message}`, {
        details: { field: "metadata.constraints.choices" },
      });
    }
    throw error;
  }
  return {
    type,
    createdBy: "typescript",
    tags: { ...tags },
    createdAt: undefined,
    updatedAt: undefined,
    updatedBy: "",
    constraints: encoded,
    declared: false,
  };
}

type Step = IteratorResult<pb.VariableUpdate, undefined>;

/**
 * A WatchSessionVariables call as a VariableWatcher. It reads the stream only as fast
 * as it is iterated, so a slow consumer applies back-pressure to the host.
 */
export class RemoteVariableWatcher implements VariableWatcher {
  private readonly messages: AsyncIterator<pb.VariableUpdate, undefined>;
  /** A message read by ready() before the iteration asked for it. */
  private peeked: Promise<Step> | undefined;
  private readonly headers: Promise<grpc.Metadata | undefined>;
  private readyPromise: Promise<void> | undefined;
  private closed = false;
  private finished = false;

  constructor(
    private readonly call: grpc.ClientReadableStream<pb.VariableUpdate>,
    private readonly decode: DecodeOptions,
    private readonly errorFromInfo: (info: pb.ErrorInfo) => BridgeError,
    private readonly transportError: (error: unknown) => BridgeError,
    signal: AbortSignal | undefined,
  ) {
    this.headers = new Promise((resolve) => {
      call.once("metadata", resolve);
      // Settles ready() when the call fails before sending headers.
      call.once("status", () => resolve(undefined));
    });
    this.messages = (call as AsyncIterable<pb.VariableUpdate>)[Symbol.asyncIterator]() as AsyncIterator<
      pb.VariableUpdate,
      undefined
    >;
    if (signal?.aborted) this.close();
    signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  ready(): Promise<void> {
    this.readyPromise ??= this.waitReady();
    return this.readyPromise;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.finished) this.call.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<VariableUpdate, void, undefined> {
    try {
      for (;;) {
        const step = await this.read();
        if (step === undefined) return;
        const update = this.convert(step);
        if (update === undefined) continue;
        yield update;
        if (update.kind === "session_ended") return;
      }
    } finally {
      this.close();
    }
  }

  private async waitReady(): Promise<void> {
    const headers = await this.headers;
    if (headers?.get(WATCH_READY_HEADER)[0] === "ready") return;
    // No ready header: the watch failed, and its first message says why. The message stays
    // peeked, so that iterating the watcher throws the same error.
    this.peeked ??= this.messages.next();
    let step: Step;
    try {
      step = await this.peeked;
    } catch (error) {
      throw this.transportError(error);
    }
    if (step.done !== true) this.convert(step.value);
    throw new BridgeError(ErrorType.CommunicationError, "the watch ended before the host registered it");
  }

  /** The next message; undefined when the stream ended because this watcher closed it. */
  private async read(): Promise<pb.VariableUpdate | undefined> {
    const pending = this.peeked;
    this.peeked = undefined;
    let step: Step;
    try {
      step = await (pending ?? this.messages.next());
    } catch (error) {
      this.finished = true;
      if (this.closed) return undefined;
      throw this.transportError(error);
    }
    if (step.done === true) {
      this.finished = true;
      if (this.closed) return undefined;
      throw new BridgeError(
        ErrorType.CommunicationError,
        "the variable watch ended without a session_ended update or an error",
      );
    }
    return step.value;
  }

  /** The update a message carries; throws the error of an error update. */
  private convert(message: pb.VariableUpdate): VariableUpdate | undefined {
    // SESSION_ENDED carries its reason as an error; any other update with an error is a failure.
    const isEnd = message.kind === pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_SESSION_ENDED;
    if (message.error !== undefined && !isEnd) {
      this.finished = true;
      throw this.errorFromInfo(message.error);
    }
    const update = variableUpdateFromPb(message, this.decode);
    if (update?.kind === "session_ended") this.finished = true;
    return update;
  }
}
