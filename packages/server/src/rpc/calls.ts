/**
 * Calls: many ExecuteTool calls on one bidi stream (the multiplexed call stream). Each call
 * frame runs through the engine with a CallContext of its own (its request id as
 * ExecuteTool's, its own Cancellation), and its answer, tagged with the frame's call_id, is
 * written as soon as the call is done, so a slow call holds up no other.
 *
 * Flow control: while maxCallsPerStream calls of the stream run, or while the client is
 * not reading responses (write() returned false), the stream reads no further frames;
 * HTTP/2 flow control then holds the client's writes, so neither side buffers more than
 * that many calls and their responses.
 */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, pb } from "@toolbridge/core";
import type { StreamCredentials } from "../auth/open-streams.js";
import type { Principal } from "../auth/principal.js";
import { FORWARDED_HEADER } from "../peers/forwarder.js";
import { type CallContext, Cancellation, callLogger, errorInfo, newId } from "../tools/engine.js";
import { cancellationReason, chosenRequestId, deadlineOf } from "./call-context.js";
import type { OpenCallStream } from "./call-streams.js";
import { SHUTTING_DOWN, shuttingDown } from "./draining.js";
import { responseOf } from "./execute.js";
import { type MalformedRequest, refusalOf } from "./malformed.js";
import type { RpcHost } from "./rpc-host.js";
import { writable } from "./writable.js";

/** The grpc-js side of a Calls stream; frames that cannot be decoded arrive as MalformedRequest. */
export type CallStream = grpc.ServerDuplexStream<pb.CallFrame | MalformedRequest, pb.CallAnswer>;

type Status = { readonly code: grpc.status; readonly details: string };

/** The name of the server span of each call on a Calls stream. */
const CALLS_METHOD = pb.ToolBridgeService.calls.path.slice(1);

/**
 * The Calls handler: runs the stream's calls, each as the principal the stream was opened
 * by, until it is over; a shutdown drains it through `host.callStreams`. When the stream's
 * credentials are revoked it ends with their status (UNAUTHENTICATED), and its calls still
 * running are cancelled, their tools aborted with a Cancelled error saying why.
 */
export function calls(host: RpcHost, stream: CallStream, credentials: StreamCredentials): Promise<void> {
  const mux = new CallMux(host, stream, credentials.principal);
  credentials.onRevoked((revocation) => mux.revoke(revocation));
  host.callStreams.add(mux);
  return mux.finished;
}

/** Runs the calls of one Calls stream; `finished` settles once the stream is over and no call runs. */
export class CallMux implements OpenCallStream {
  /** The calls running, by call id. */
  private readonly running = new Map<bigint, Cancellation>();
  private readonly max: number;
  private readonly deadline: number;
  /** When the stream opened: how long its deadline gave it (cancellationReason). */
  private readonly opened: number;
  /** Forwarded by another node, which records the calls and must not get them back. */
  private readonly forwarded: boolean;
  private inputEnded = false;
  private writeBlocked = false;
  private ended = false;
  private resolveFinished: () => void = () => {};
  readonly finished = new Promise<void>((resolve) => {
    this.resolveFinished = resolve;
  });

  constructor(
    private readonly host: RpcHost,
    private readonly stream: CallStream,
    private readonly principal: Principal,
  ) {
    this.max = host.config.maxCallsPerStream;
    this.deadline = deadlineOf(stream);
    this.opened = Date.now();
    this.forwarded = stream.metadata.get(FORWARDED_HEADER).length > 0;
    stream.on("data", (frame: pb.CallFrame | MalformedRequest) => this.onFrame(frame));
    stream.on("end", () => {
      this.inputEnded = true;
      this.settle();
    });
    stream.once("cancelled", () => {
      const reason = cancellationReason(this.deadline, this.opened);
      for (const cancellation of this.running.values()) cancellation.cancel(reason);
      this.settle();
    });
  }

  /** Shutdown began: calls not started yet are refused, and the stream ends once its calls are done. */
  drain(): void {
    this.settle();
  }

  /** The stream's credentials were revoked: it ends with their status, and its running calls are cancelled. */
  revoke(revocation: Status): void {
    this.fail(
      revocation,
      new BridgeError(
        ErrorType.Cancelled,
        `the call stream's credentials were revoked: ${revocation.details}`,
        {
          details: { reason: "credentials_revoked" },
        },
      ),
    );
  }

  /** Fails every running call with `reason` (the shutdown grace period is over). */
  abort(reason: BridgeError): void {
    for (const cancellation of this.running.values()) cancellation.cancel(reason);
  }

  private onFrame(frame: pb.CallFrame | MalformedRequest): void {
    if (this.ended) return;
    const refusal = refusalOf(frame);
    if (refusal !== undefined) {
      this.fail(refusal);
      return;
    }
    const { callId, frame: content, traceContext } = frame as pb.CallFrame;
    // A frame of a kind this host does not know (a newer client's) is skipped.
    if (content?.$case === "cancel") {
      this.running.get(callId)?.cancel(new BridgeError(ErrorType.Cancelled, "the client cancelled the call"));
    } else if (content?.$case === "call") {
      this.start(callId, content.value, traceContext);
    }
  }

  private start(
    callId: bigint,
    req: pb.ToolCallRequest,
    traceContext: Readonly<Record<string, string>>,
  ): void {
    if (callId === 0n) {
      this.fail(
        invalid(
          "every call on Calls needs a call_id other than 0, unique among the stream's calls in flight",
        ),
      );
      return;
    }
    if (this.running.has(callId)) {
      this.fail(invalid(`call_id ${callId} is already in flight on this stream`));
      return;
    }
    // As ExecuteTool: the client's request id (also its replay key), else one the host makes
    // up; but only the frame's. The stream's x-request-id header (a proxy may set one) is
    // one for all its calls, and a request id names one call.
    const chosen = req.requestId === "" ? undefined : chosenRequestId(req.requestId, this.stream.metadata);
    const requestId = chosen ?? newId("req");
    if (this.host.draining) {
      this.refuse(callId, requestId, shuttingDown(SHUTTING_DOWN));
      return;
    }
    const cancellation = new Cancellation();
    this.running.set(callId, cancellation);
    if (this.running.size >= this.max) this.stream.pause();
    const ctx: CallContext = {
      requestId,
      deadline: this.deadline,
      cancellation,
      log: callLogger(this.host.log, { request_id: requestId }),
      principal: this.principal,
      idempotencyKey: this.forwarded ? undefined : chosen,
      forwarded: this.forwarded,
    };
    const tracing = this.host.tracing.current;
    if (tracing === undefined) {
      void this.host.engine.call(req, ctx).then((outcome) => {
        this.running.delete(callId);
        this.answer({ callId, response: responseOf(outcome, requestId) });
      });
      return;
    }
    // Each call continues its own caller's trace, from its frame: the stream is shared.
    const span = tracing.serverSpan(CALLS_METHOD, traceContext);
    void span
      .within(() => this.host.engine.call(req, ctx))
      .then((outcome) => {
        this.running.delete(callId);
        this.answer({ callId, response: responseOf(outcome, requestId) });
        span.end(this.ended ? grpc.status.CANCELLED : grpc.status.OK);
      });
  }

  /** Answers a call that is not run with its error. */
  private refuse(callId: bigint, requestId: string, error: BridgeError): void {
    const info = errorInfo(this.host, error);
    this.answer({
      callId,
      response: { success: false, result: undefined, error: info, requestId, metrics: undefined },
    });
  }

  private answer(answer: pb.CallAnswer): void {
    if (!this.ended && !this.stream.cancelled && !this.stream.write(answer) && !this.writeBlocked) {
      // The client is not reading: take no new calls until it has caught up.
      this.writeBlocked = true;
      this.stream.pause();
      void writable(this.stream).then(() => {
        this.writeBlocked = false;
        this.settle();
      });
    }
    this.settle();
  }

  /** Reads on when there is room, ends the stream when nothing more will come of it, and tells when it is over. */
  private settle(): void {
    if (this.ended || this.stream.cancelled) {
      // Calls cancelled with the stream still settle on their own; it is over once they have.
      if (this.running.size === 0) this.resolveFinished();
      return;
    }
    if (this.running.size < this.max && !this.writeBlocked && this.stream.isPaused()) this.stream.resume();
    if (this.running.size > 0) return;
    if (this.inputEnded) {
      this.ended = true;
      this.stream.end();
      this.resolveFinished();
    } else if (this.host.draining) {
      // Every call read from the stream has been answered by now, and the frames not read yet
      // never will be: clients send a call left without an answer at this status again, on a
      // new stream (docs/errors.md). So no end that leaves a call it read unanswered may carry
      // UNAVAILABLE.
      this.end({ code: grpc.status.UNAVAILABLE, details: SHUTTING_DOWN });
    }
  }

  /** Ends the stream with an error status; the calls still running are cancelled (with `reason`) and not answered. */
  private fail(
    status: Status,
    reason = new BridgeError(ErrorType.Cancelled, `the call stream ended: ${status.details}`),
  ): void {
    for (const cancellation of this.running.values()) cancellation.cancel(reason);
    this.end(status);
  }

  private end(status: Status): void {
    if (this.ended) return;
    this.ended = true;
    this.stream.emit("error", status);
    this.settle();
  }
}

function invalid(details: string): Status {
  return { code: grpc.status.INVALID_ARGUMENT, details: `Calls: ${details}` };
}
