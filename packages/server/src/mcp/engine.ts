/**
 * What the MCP adapters need of the host, in one narrow interface: the call engine with a
 * CallContext (principal, cancellation, deadline), the tool specs a session sees, the
 * session check, the authenticator, the variables (served as resources) and the limits.
 * `mcpEngine` builds it from the call engine and the RPC host; it is the only MCP module that
 * knows their shape.
 */
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { pb } from "@toolbridge/core";
import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";
import type { HostConfig } from "../config.js";
import type { RpcHost } from "../rpc/rpc-host.js";
import {
  type CallContext,
  type CallOutcome,
  type CallRequest,
  type ChunkSink,
  newId,
  type StreamOutcome,
} from "../tools/engine.js";
import type { VariableService } from "../variables/service.js";

/** The metrics label of calls made by MCP clients. */
export const MCP_PROTOCOL = "mcp";

/** What an MCP request is authenticated by. */
export interface McpCredentials {
  /** The HTTP `Authorization` header; undefined when absent. */
  readonly authorization: string | undefined;
  /** The client certificate a TLS handshake verified, if any. */
  readonly certificate: PeerCertificate | undefined;
  /** Named in errors and given to an authentication hook as the method, e.g. "POST /mcp". */
  readonly method: string;
}

export interface McpEngine {
  readonly config: HostConfig;
  readonly log: Logger;
  readonly version: string;
  readonly variables: VariableService;
  /** True when every request must authenticate. */
  readonly authenticates: boolean;
  /** True once the host is shutting down: new calls are refused. */
  readonly draining: boolean;
  /** The principal of a request; throws (an RpcStatusError UNAUTHENTICATED) when its credentials name none. */
  authenticate(credentials: McpCredentials): Promise<Principal>;
  /** Rejects with SessionNotFound unless the session is live and `principal`'s to use. */
  checkSession(sessionId: string, principal: Principal): Promise<void>;
  /** The specs of the tools a session sees ("": the global tools), this node's and forwarded ones. */
  toolSpecs(sessionId: string): Promise<pb.ToolSpec[]>;
  /** The spec of the tool a call of `name` in the session would run; undefined when there is none. */
  toolSpec(sessionId: string, name: string): Promise<pb.ToolSpec | undefined>;
  /** A request id unique within the host, for a call the client named none for. */
  newRequestId(): string;
  runCall(req: CallRequest, ctx: CallContext): Promise<CallOutcome>;
  runStream(req: CallRequest, ctx: CallContext, sink: ChunkSink): Promise<StreamOutcome>;
  /** The in-band form of a failure, as the engine reports it. */
  errorInfo(error: unknown): pb.ErrorInfo;
  /** Counts `work` as a call in flight, which a graceful shutdown waits for. */
  track<T>(work: Promise<T>): Promise<T>;
  /**
   * Counts a subscription (a watch) on `sessionId` against the host's stream limits; returns
   * its release. Throws ResourceExhausted naming the limit.
   */
  openStream(sessionId: string, principal: Principal): () => void;
}

/** The MCP adapters' view of the host: its call engine and what the RPC services serve from. */
export function mcpEngine(rt: RpcHost): McpEngine {
  const { engine } = rt;
  return {
    config: rt.config,
    log: rt.log,
    version: rt.version,
    variables: rt.variables,
    get authenticates() {
      return rt.auth.enabled;
    },
    get draining() {
      return rt.draining;
    },
    authenticate: (credentials) => {
      const metadata = new grpc.Metadata();
      if (credentials.authorization !== undefined) metadata.set("authorization", credentials.authorization);
      return rt.auth.authenticate({
        metadata,
        getPath: () => credentials.method,
        getAuthContext: () => ({ sslPeerCertificate: credentials.certificate }),
      });
    },
    checkSession: async (sessionId, principal) => {
      await engine.checkSession(sessionId, principal);
    },
    toolSpecs: async (sessionId) => {
      const specs = engine.tools
        .list(sessionId)
        .map(({ tool, sessionScoped }) =>
          tool.spec(sessionScoped ? pb.ToolScope.TOOL_SCOPE_SESSION : pb.ToolScope.TOOL_SCOPE_GLOBAL),
        );
      if (engine.remote !== undefined && sessionId !== "") {
        const own = new Set(specs.map((spec) => spec.name));
        for (const remote of await engine.remote.list(sessionId)) {
          if (!own.has(remote.name)) specs.push(remote.spec);
        }
      }
      return specs;
    },
    toolSpec: async (sessionId, name) => {
      const tool = engine.tools.resolve(sessionId, name);
      if (tool !== undefined) {
        const global = engine.tools.isGlobal(tool);
        return tool.spec(global ? pb.ToolScope.TOOL_SCOPE_GLOBAL : pb.ToolScope.TOOL_SCOPE_SESSION);
      }
      if (engine.remote === undefined || sessionId === "") return undefined;
      return (await engine.remote.find(sessionId, name))?.spec;
    },
    newRequestId: () => newId("mcp"),
    runCall: (req, ctx) => engine.call(req, ctx),
    runStream: (req, ctx, sink) => engine.stream(req, ctx, sink),
    errorInfo: (error) => engine.errorInfo(error),
    track: (work) => rt.calls.track(work),
    openStream: (sessionId, principal) => rt.streams.open(sessionId, principal),
  };
}
