/** Client side of the session-variable RPCs: request building and the watch stream. */
import type * as grpc from "@grpc/grpc-js";
import {
  BridgeError,
  constraintsToPb,
  type DecodeOptions,
  ErrorType,
  errorFromInfo,
  pb,
  type VariableConstraints,
  type VariableUpdate,
  type VariableWatcher,
  variableUpdateFromPb,
} from "@toolbridge/core";

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
    writerLabel: "",
  };
}

type Step = IteratorResult<pb.VariableUpdate, undefined>;

const READY = pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_READY;

/**
 * A WatchSessionVariables call as a VariableWatcher. It reads the stream only as fast
 * as it is iterated, so a slow consumer applies back-pressure to the host. The host's
 * READY update (the first of an accepted watch) settles ready() and is not yielded.
 */
export class RemoteVariableWatcher implements VariableWatcher {
  private readonly messages: AsyncIterator<pb.VariableUpdate, undefined>;
  /** The first message (READY, or the error of a failed watch), read once for ready() and the iteration. */
  private first: Promise<Step> | undefined;
  private firstTaken = false;
  private readyPromise: Promise<void> | undefined;
  private closed = false;
  private finished = false;

  constructor(
    private readonly call: grpc.ClientReadableStream<pb.VariableUpdate>,
    private readonly decode: DecodeOptions,
    private readonly transportError: (error: unknown) => BridgeError,
    signal: AbortSignal | undefined,
  ) {
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

  private firstMessage(): Promise<Step> {
    this.first ??= this.messages.next();
    return this.first;
  }

  /** Settles on the first message: READY, or the error of a watch that failed (which the iteration throws too). */
  private async waitReady(): Promise<void> {
    let step: Step;
    try {
      step = await this.firstMessage();
    } catch (error) {
      throw this.transportError(error);
    }
    if (step.done !== true && step.value.kind === READY) return;
    if (step.done !== true) this.convert(step.value);
    throw new BridgeError(ErrorType.CommunicationError, "the watch ended before the host registered it");
  }

  /** The next message; undefined when the stream ended because this watcher closed it. */
  private async read(): Promise<pb.VariableUpdate | undefined> {
    const first = !this.firstTaken;
    this.firstTaken = true;
    let step: Step;
    try {
      step = await (first ? this.firstMessage() : this.messages.next());
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

  /** The update a message carries (undefined for READY); throws the error of an error update. */
  private convert(message: pb.VariableUpdate): VariableUpdate | undefined {
    if (message.error !== undefined) {
      this.finished = true;
      throw errorFromInfo(message.error);
    }
    const update = variableUpdateFromPb(message, this.decode);
    if (update?.kind === "session_ended") this.finished = true;
    return update;
  }
}
