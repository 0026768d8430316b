/**
 * Session tools across nodes. A tool registered for one session lives in the registry of
 * the node it was registered on; with a shared store that node lists it there (its spec and
 * its node), and every node advertises its address. A call of it reaching another node is
 * forwarded over gRPC to the node serving it, whose call engine runs it like any call;
 * this node's engine drives the forwarded call in place of a ToolInvocation.
 */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, pb, type pbValues } from "@toolbridge/core";
import type { SharedSessionStore } from "../sessions/store.js";
import type { CallRequest } from "./call.js";

/** The metadata header that marks a forwarded call (its value: the forwarding node). */
export const FORWARDED_HEADER = "x-toolbridge-forwarded";

/** A session tool another node serves. */
export interface RemoteTool {
  readonly name: string;
  readonly node: string;
  readonly spec: pb.ToolSpec;
}

/** Extra time the forwarded call's gRPC deadline allows beyond the tool's own timeout. */
const DEADLINE_SLACK_MS = 5_000;

/** Finds the session tools of other nodes and forwards calls to them. */
export class Forwarder {
  private readonly clients = new Map<string, pb.ToolBridgeClient>();
  /** Authenticates forwarded calls on the serving node as the host (Authenticator.trustPeerToken). */
  peerToken: string | undefined;

  constructor(
    private readonly store: SharedSessionStore,
    private readonly maxMessageBytes: number,
  ) {}

  /** The session tools other nodes serve, in name order. */
  async list(sessionId: string): Promise<RemoteTool[]> {
    const listed = await this.store.sessionTools(sessionId);
    const tools: RemoteTool[] = [];
    for (const [name, { node, spec }] of listed) {
      if (node !== this.store.nodeId) tools.push({ name, node, spec: pb.ToolSpec.decode(spec) });
    }
    return tools.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The session tool `name` when another node serves it. */
  async find(sessionId: string, name: string): Promise<RemoteTool | undefined> {
    const listed = (await this.store.sessionTools(sessionId)).get(name);
    if (listed === undefined || listed.node === this.store.nodeId) return undefined;
    return { name, node: listed.node, spec: pb.ToolSpec.decode(listed.spec) };
  }

  /** Starts nothing yet: the call goes out when the engine runs it (`run` or `stream`). */
  call(tool: RemoteTool, req: CallRequest, requestId: string, timeoutMs: number): ForwardedCall {
    return new ForwardedCall(this, tool, req, requestId, timeoutMs);
  }

  /** A client of the node serving `tool`; Unavailable naming the node when it is gone. */
  async clientFor(
    tool: RemoteTool,
    sessionId: string,
  ): Promise<{ client: pb.ToolBridgeClient; address: string }> {
    const address = await this.store.nodeAddress(tool.node);
    if (address === undefined) {
      throw new BridgeError(
        ErrorType.Unavailable,
        `tool '${tool.name}' of session '${sessionId}' is served by node ${tool.node}, which is gone ` +
          "(it no longer advertises its address in the store); a session tool lives on the node it was " +
          "registered on: register it again on a live node",
        { details: { node: tool.node, tool: tool.name, reason: "node_gone", retriable: "false" } },
      );
    }
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new pb.ToolBridgeClient(address, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": this.maxMessageBytes,
        "grpc.max_send_message_length": this.maxMessageBytes,
      });
      this.clients.set(address, client);
    }
    return { client, address };
  }

  get nodeId(): string {
    return this.store.nodeId;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** One call running on another node: what the engine's run step drives instead of a ToolInvocation. */
export class ForwardedCall {
  private readonly startedAt = performance.now();
  private abortReason: BridgeError | undefined;
  private cancel: (() => void) | undefined;

  constructor(
    private readonly forwarder: Forwarder,
    readonly tool: RemoteTool,
    private readonly req: CallRequest,
    private readonly requestId: string,
    private readonly timeoutMs: number,
  ) {}

  /** Cancels the call on the other node, which aborts its tool. */
  abort(reason: BridgeError): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.cancel?.();
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /** Runs it to its encoded result (as the serving node encoded it); throws its error. */
  async run(): Promise<pbValues.Value> {
    const { client, address } = await this.open();
    const response = await new Promise<pb.ToolCallResponse>((resolve, reject) => {
      const call = client.executeTool(this.request(), this.metadata(), this.options(), (error, reply) => {
        if (error !== null) reject(this.transportError(error, address));
        else resolve(reply);
      });
      this.cancel = () => call.cancel();
    });
    if (!response.success) throw asBridgeError(response.error);
    return response.result ?? NULL;
  }

  /** Runs it as a stream: its encoded chunks in order; throws its error. */
  async *stream(): AsyncGenerator<pbValues.Value> {
    const { client, address } = await this.open();
    const call = client.streamTool(
      { ...this.request(), streamId: this.requestId, idleTimeoutMs: this.req.idleTimeoutMs ?? 0 },
      this.metadata(),
      this.options(),
    );
    this.cancel = () => call.cancel();
    try {
      for await (const chunk of call as AsyncIterable<pb.ToolStreamChunk>) {
        const content = chunk.content;
        if (content?.$case === "data") yield content.value;
        else if (content?.$case === "error") throw asBridgeError(content.value);
        else if (content?.$case === "complete") return;
      }
    } catch (error) {
      if (error instanceof BridgeError) throw error;
      throw this.transportError(error as grpc.ServiceError, address);
    } finally {
      call.cancel();
    }
  }

  private async open(): Promise<{ client: pb.ToolBridgeClient; address: string }> {
    if (this.abortReason !== undefined) throw this.abortReason;
    const opened = await this.forwarder.clientFor(this.tool, this.req.sessionId);
    if (this.abortReason !== undefined) throw this.abortReason;
    return opened;
  }

  private request(): pb.ToolCallRequest {
    const { req } = this;
    return {
      sessionId: req.sessionId,
      toolId: req.toolId,
      args: [...req.args],
      kwargs: { ...req.kwargs },
      requestId: this.requestId,
      timeoutMs: this.timeoutMs,
    };
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set(FORWARDED_HEADER, this.forwarder.nodeId);
    // This node checked the caller's principal against the session; the serving node trusts that.
    if (this.forwarder.peerToken !== undefined)
      metadata.set("authorization", `Bearer ${this.forwarder.peerToken}`);
    return metadata;
  }

  private options(): grpc.CallOptions {
    return { deadline: new Date(Date.now() + this.timeoutMs + DEADLINE_SLACK_MS) };
  }

  /** A transport failure of the forwarded call: the abort that caused it, or Unavailable naming the node. */
  private transportError(error: grpc.ServiceError, address: string): BridgeError {
    if (this.abortReason !== undefined) return this.abortReason;
    return new BridgeError(
      ErrorType.Unavailable,
      `tool '${this.tool.name}' of session '${this.req.sessionId}' is served by node ${this.tool.node} at ` +
        `${address}, which did not answer (${error.details || error.message}); retry, or register the tool ` +
        "again on a live node if that node is gone",
      {
        details: {
          node: this.tool.node,
          address,
          tool: this.tool.name,
          reason: "node_unreachable",
          grpc_code: String(error.code),
          retriable: "true",
        },
      },
    );
  }
}

const NULL: pbValues.Value = { kind: { $case: "nullValue", value: 0 } };

/** The serving node's in-band error, as the same error here. */
function asBridgeError(info: pb.ErrorInfo | undefined): BridgeError {
  return new BridgeError(
    (info?.type ?? "InternalError") as ErrorType,
    info?.message ?? "the node serving the tool answered without an error",
    { details: info?.details ?? {} },
  );
}
