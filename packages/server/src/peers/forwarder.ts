/**
 * Session tools across nodes, on the wire: the engine's RemoteTools (tools/remote.ts) as a
 * gRPC client of the other nodes. A tool registered for one session lives in the registry of
 * the node it was registered on; with a shared store that node lists it there (its spec and
 * its node), and every node advertises its address and whether it serves TLS there. A call
 * of it reaching another node is forwarded over gRPC to the node serving it (over TLS, with
 * that node's certificate verified, to a node serving TLS; never in plaintext from a node
 * serving TLS), whose call engine runs it like any call; this node's engine drives the
 * forwarded call in place of a ToolInvocation.
 */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, errorFromInfo, pb, type pbValues } from "@toolbridge/core";
import type { NodeDirectory } from "../sessions/node-directory.js";
import type { SessionToolDirectory } from "../sessions/session-tools.js";
import type { CallRequest, RemoteCall, RemoteTool, RemoteTools } from "../tools/engine.js";
import type { TraceCarrier } from "../tracing/contract.js";

/** The metadata header that marks a forwarded call (its value: the forwarding node). */
export const FORWARDED_HEADER = "x-toolbridge-forwarded";

/** Extra time the forwarded call's gRPC deadline allows beyond the tool's own timeout. */
const DEADLINE_SLACK_MS = 5_000;

/** A client of another node, where it was reached, and whether over TLS. */
interface PeerConnection {
  readonly client: pb.ToolBridgeClient;
  readonly address: string;
  readonly tls: boolean;
}

/** How this host reaches the other hosts sharing its store. */
export interface PeerTransport {
  /** This host serves TLS: it forwards calls (and the peer token) to hosts serving TLS only. */
  readonly servesTls: boolean;
  /** Credentials for a host serving TLS: they verify its certificate (and present this host's). */
  credentials(): grpc.ChannelCredentials;
}

/** Finds the session tools of other nodes and forwards calls to them. */
export class Forwarder implements RemoteTools {
  private readonly clients = new Map<string, pb.ToolBridgeClient>();
  /** Authenticates forwarded calls on the serving node as the host (Authenticator.trustPeerToken). */
  peerToken: string | undefined;

  constructor(
    private readonly store: { readonly nodes: NodeDirectory; readonly sessionTools: SessionToolDirectory },
    private readonly maxMessageBytes: number,
    private readonly transport: PeerTransport,
  ) {}

  /** The session tools other nodes serve, in name order. */
  async list(sessionId: string): Promise<RemoteTool[]> {
    const listed = await this.store.sessionTools.list(sessionId);
    const tools: RemoteTool[] = [];
    for (const [name, { node, spec }] of listed) {
      if (node !== this.store.nodes.nodeId) tools.push({ name, node, spec: pb.ToolSpec.decode(spec) });
    }
    return tools.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The session tool `name` when another node serves it. */
  async find(sessionId: string, name: string): Promise<RemoteTool | undefined> {
    const listed = (await this.store.sessionTools.list(sessionId)).get(name);
    if (listed === undefined || listed.node === this.store.nodes.nodeId) return undefined;
    return { name, node: listed.node, spec: pb.ToolSpec.decode(listed.spec) };
  }

  /** Starts nothing yet: the call goes out when the engine runs it (`run` or `stream`), with `trace` in its metadata. */
  call(
    tool: RemoteTool,
    req: CallRequest,
    requestId: string,
    timeoutMs: number,
    trace?: TraceCarrier,
  ): ForwardedCall {
    return new ForwardedCall(this, tool, req, requestId, timeoutMs, trace);
  }

  /** A client of the node serving `tool`; Unavailable naming the node when it is gone. */
  async clientFor(tool: RemoteTool, sessionId: string): Promise<PeerConnection> {
    const entry = await this.store.nodes.entry(tool.node);
    if (entry === undefined) {
      throw new BridgeError(
        ErrorType.Unavailable,
        `tool '${tool.name}' of session '${sessionId}' is served by node ${tool.node}, which is gone ` +
          "(it no longer advertises its address in the store); a session tool lives on the node it was " +
          "registered on: register it again on a live node",
        { details: { node: tool.node, tool: tool.name, reason: "node_gone", retriable: "false" } },
      );
    }
    const { address, tls } = entry;
    if (!tls && this.transport.servesTls) {
      throw new BridgeError(
        ErrorType.Unavailable,
        `tool '${tool.name}' of session '${sessionId}' is served by node ${tool.node} at ${address}, which ` +
          "serves plaintext: a host serving TLS does not forward calls (nor the peer token) in plaintext; " +
          "serve TLS on every host sharing the store",
        {
          details: {
            node: tool.node,
            address,
            tool: tool.name,
            reason: "peer_plaintext",
            retriable: "false",
          },
        },
      );
    }
    const key = `${tls ? "tls" : "plaintext"}|${address}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      const credentials = tls ? this.transport.credentials() : grpc.credentials.createInsecure();
      client = new pb.ToolBridgeClient(address, credentials, {
        "grpc.max_receive_message_length": this.maxMessageBytes,
        "grpc.max_send_message_length": this.maxMessageBytes,
      });
      this.clients.set(key, client);
    }
    return { client, address, tls };
  }

  /** Connects anew for the next calls (the TLS files were reloaded); calls under way finish as they are. */
  reconnect(): void {
    this.close();
  }

  get nodeId(): string {
    return this.store.nodes.nodeId;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** One call running on another node: what the engine's run step drives instead of a ToolInvocation. */
export class ForwardedCall implements RemoteCall {
  private readonly startedAt = performance.now();
  private abortReason: BridgeError | undefined;
  private cancel: (() => void) | undefined;

  constructor(
    private readonly forwarder: Forwarder,
    readonly tool: RemoteTool,
    private readonly req: CallRequest,
    private readonly requestId: string,
    private readonly timeoutMs: number,
    private readonly trace: TraceCarrier | undefined,
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
    const connection = await this.open();
    const response = await new Promise<pb.ToolCallResponse>((resolve, reject) => {
      const call = connection.client.executeTool(
        this.request(),
        this.metadata(),
        this.options(),
        (error, reply) => {
          if (error !== null) reject(this.transportError(error, connection));
          else resolve(reply);
        },
      );
      this.cancel = () => call.cancel();
    });
    if (!response.success) throw errorFromInfo(response.error, WITHOUT_ERROR);
    return response.result ?? NULL;
  }

  /** Runs it as a stream: its encoded chunks in order; throws its error. */
  async *stream(): AsyncGenerator<pbValues.Value> {
    const connection = await this.open();
    const call = connection.client.streamTool(
      { ...this.request(), streamId: this.requestId, idleTimeoutMs: this.req.idleTimeoutMs ?? 0 },
      this.metadata(),
      this.options(),
    );
    this.cancel = () => call.cancel();
    try {
      for await (const chunk of call as AsyncIterable<pb.ToolStreamChunk>) {
        const content = chunk.content;
        if (content?.$case === "data") yield content.value;
        else if (content?.$case === "error") throw errorFromInfo(content.value, WITHOUT_ERROR);
        else if (content?.$case === "complete") return;
      }
    } catch (error) {
      if (error instanceof BridgeError) throw error;
      throw this.transportError(error as grpc.ServiceError, connection);
    } finally {
      call.cancel();
    }
  }

  private async open(): Promise<PeerConnection> {
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
    // The serving node's spans continue the trace of this node's execute_tool span.
    if (this.trace !== undefined)
      for (const [key, value] of Object.entries(this.trace)) metadata.set(key, value);
    return metadata;
  }

  private options(): grpc.CallOptions {
    return { deadline: new Date(Date.now() + this.timeoutMs + DEADLINE_SLACK_MS) };
  }

  /** A transport failure of the forwarded call: the abort that caused it, or Unavailable naming the node. */
  private transportError(error: grpc.ServiceError, { address, tls }: PeerConnection): BridgeError {
    if (this.abortReason !== undefined) return this.abortReason;
    const reason = error.details || error.message;
    if (tls && error.code === grpc.status.UNAVAILABLE && CERTIFICATE_FAILURE.test(reason)) {
      return new BridgeError(
        ErrorType.Unavailable,
        `tool '${this.tool.name}' of session '${this.req.sessionId}' is served by node ${this.tool.node} at ` +
          `${address}, whose TLS certificate this host refused (${reason}): every host's certificate must be ` +
          "signed by the CA in peerTlsCa (else tlsClientCa, else one the system trusts) and name the address it " +
          "advertises; with tlsClientCa, each host's certificate is also its client certificate",
        {
          details: {
            node: this.tool.node,
            address,
            tool: this.tool.name,
            reason: "peer_certificate",
            grpc_code: String(error.code),
            retriable: "false",
          },
        },
      );
    }
    return new BridgeError(
      ErrorType.Unavailable,
      `tool '${this.tool.name}' of session '${this.req.sessionId}' is served by node ${this.tool.node} at ` +
        `${address}, which did not answer (${error.details || error.message}); retry, or register the tool ` +
        "again on a live node if that node is gone" +
        (tls
          ? "; over TLS, a node that refuses this host's certificate looks the same: with tlsClientCa, every " +
            "host's certificate must be signed by that CA and allow client authentication"
          : ""),
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

/** How grpc-js reports a TLS handshake refused over a certificate (Node's verification errors, OpenSSL's alerts). */
const CERTIFICATE_FAILURE = /certificate|altnames|handshake|SSL|TLS/i;

const NULL: pbValues.Value = { kind: { $case: "nullValue", value: 0 } };
const WITHOUT_ERROR = "the node serving the tool reported a failure without saying which";
