/** What the host says about a session and its tools, as plain objects. */
import { decodeValue, fromPbTimestamp, type NativeValue, pb } from "@toolbridge/core";

export interface Session {
  readonly sessionId: string;
  readonly toolCount: number;
  readonly capabilities: readonly string[];
  /** False when the session existed and this client attached to it. */
  readonly created: boolean;
}

export interface ParameterSpec {
  readonly name: string;
  readonly type: string;
  readonly description: string;
  readonly required: boolean;
  readonly default?: NativeValue;
}

/** What the host says about one tool (ListTools). */
export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  readonly streaming: boolean;
  readonly parametersSchema: Record<string, unknown>;
  /** JSON Schema of the result (a streaming tool: of each chunk), when the tool declares one. */
  readonly outputSchema: Record<string, unknown> | undefined;
  readonly parameters: readonly ParameterSpec[];
  /** The longest a call may run (a streaming tool: its total budget); 0: the host's default applies. */
  readonly timeoutMs: number;
  /** Streaming tools: the longest wait for the next chunk; 0: the host's default applies. */
  readonly idleTimeoutMs: number;
  /** Calls that may run at once, over all sessions; 0: unlimited. */
  readonly maxConcurrentCalls: number;
  /** Calls that may start per minute, over all sessions; 0: unlimited. */
  readonly rateLimitPerMinute: number;
  /** A pure tool: the same arguments always give the same result, so results may be cached. */
  readonly cacheable: boolean;
  /** Safe to call again after a failure whose outcome is unknown (retries rely on it). */
  readonly idempotent: boolean;
  readonly scope: "global" | "session";
  readonly metadata: Readonly<Record<string, string>>;
}

export interface SessionDetails {
  readonly sessionId: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly lastAccessedAt: Date;
  readonly expiresAt: Date;
  readonly toolCount: number;
  readonly variableCount: number;
  /** The principal that owns the session ("@anonymous" on a host without authentication). */
  readonly owner: string;
}

export function sessionFromPb(response: pb.InitializeSessionResponse): Session {
  return {
    sessionId: response.sessionId,
    toolCount: response.toolCount,
    capabilities: response.capabilities,
    created: response.created,
  };
}

export function sessionDetailsFromPb(info: pb.SessionInfo): SessionDetails {
  return {
    sessionId: info.sessionId,
    metadata: info.metadata,
    createdAt: fromPbTimestamp(info.createdAt),
    lastAccessedAt: fromPbTimestamp(info.lastAccessedAt),
    expiresAt: fromPbTimestamp(info.expiresAt),
    toolCount: info.toolCount,
    variableCount: info.variableCount,
    owner: info.owner,
  };
}

export function toolSpecFromPb(spec: pb.ToolSpec): ToolSpec {
  return {
    name: spec.name,
    description: spec.description,
    streaming: spec.type === pb.ToolType.TOOL_TYPE_STREAMING,
    parametersSchema: JSON.parse(spec.parametersSchema || "{}") as Record<string, unknown>,
    outputSchema:
      spec.outputSchema === "" ? undefined : (JSON.parse(spec.outputSchema) as Record<string, unknown>),
    parameters: spec.parameters.map((p) => ({
      name: p.name,
      type: p.type,
      description: p.description,
      required: p.required,
      ...(p.defaultValue === undefined ? {} : { default: decodeValue(p.defaultValue) }),
    })),
    timeoutMs: spec.limits?.timeoutMs ?? 0,
    idleTimeoutMs: spec.limits?.idleTimeoutMs ?? 0,
    maxConcurrentCalls: spec.limits?.maxConcurrentCalls ?? 0,
    rateLimitPerMinute: spec.limits?.rateLimitPerMinute ?? 0,
    cacheable: spec.cacheable,
    idempotent: spec.idempotent,
    scope: spec.scope === pb.ToolScope.TOOL_SCOPE_SESSION ? "session" : "global",
    metadata: spec.metadata,
  };
}
