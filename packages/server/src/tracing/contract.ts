/**
 * What the host's parts ask of tracing (docs/tracing.md), as types only: the engine, the
 * gRPC services, the workers and the forwarder hold a `TracingSlot` whose `current` is a
 * `Tracing` once the host starts with tracing on, and undefined otherwise. The
 * implementation (tracing/spans.ts) and the OpenTelemetry SDK (tracing/sdk.ts) are imported
 * only then, so a host that does not trace loads neither and pays one field read per call.
 */
import type { pbValues } from "@toolbridge/core";

/** W3C trace context headers ("traceparent", "tracestate", "baggage") by name. */
export type TraceCarrier = Readonly<Record<string, string>>;

/** Where a server span's parent comes from: gRPC metadata, or a Calls frame's trace_context. */
export type IncomingCarrier = TraceCarrier | { get(key: string): readonly unknown[]; getMap(): object };

/** Attribute values a span takes. */
export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** A span that work can run under. */
export interface ActiveSpan {
  /** Runs `fn` with this span as the active context: spans started inside nest under it. */
  within<T>(fn: () => T): T;
  /** This span's context as W3C headers, for a call sent to another process. */
  carrier(): TraceCarrier;
}

/** The server span of one RPC (or of one call on a Calls stream). */
export interface RpcSpan extends ActiveSpan {
  /** Ends it with the gRPC status code the RPC ended with (0: OK) and, when not OK, its message. */
  end(code: number, message?: string): void;
}

/** What the `execute_tool` span of one call is started with. */
export interface ToolSpanStart {
  readonly toolId: string;
  readonly sessionId: string;
  readonly requestId: string;
  readonly principal: string;
  /** What the call came over ("grpc", "mcp", ...). */
  readonly protocol: string;
  readonly streamed: boolean;
  readonly args: readonly pbValues.Value[];
  readonly kwargs: Readonly<Record<string, pbValues.Value>>;
}

/** How a call ended, for its `execute_tool` span. */
export interface ToolSpanEnd {
  /** The tool the call resolved to (a host tool's own name); absent: it resolved to none. */
  readonly tool?: string;
  /** The error type the call failed with (docs/errors.md); absent: it succeeded. */
  readonly errorType?: string;
  readonly errorMessage?: string;
  /** Answered from the call's replay record: the tool did not run again. */
  readonly replayed: boolean;
  /** The node that ran it, when another node served the tool. */
  readonly remoteNode?: string;
  /** A stream's chunks. */
  readonly chunks?: number;
  /** The encoded result, recorded only when the host records content. */
  readonly result?: pbValues.Value;
}

/** The `execute_tool` span of one call through the engine. */
export interface ToolSpan extends ActiveSpan {
  end(outcome: ToolSpanEnd): void;
}

/** The client span of a call this host sends (to one of its workers). */
export interface ClientSpan {
  carrier(): TraceCarrier;
  /** Ends it; `errorType` when the call failed. */
  end(errorType?: string, message?: string): void;
}

/** The spans of one host, implemented over the OpenTelemetry API (tracing/spans.ts). */
export interface Tracing {
  /** The server span of an RPC named `method` ("toolbridge.v1.ToolBridge/ExecuteTool"), continuing `carrier`'s trace. */
  serverSpan(method: string, carrier: IncomingCarrier): RpcSpan;
  /** The `execute_tool {tool}` span of a call, under the active context. */
  toolSpan(start: ToolSpanStart): ToolSpan;
  /** A client span named `method` under the active context, e.g. a call to a worker. */
  clientSpan(method: string, attributes: SpanAttributes): ClientSpan;
  /** The active context as W3C headers (empty when there is none), for a process started now. */
  activeCarrier(): TraceCarrier;
  /** Flushes the spans not exported yet and stops what this host started (the SDK, when the host started it). */
  shutdown(): Promise<void>;
}

/** A host's tracing: `current` is set when it starts with tracing on, and cleared when it stops. */
export interface TracingSlot {
  current: Tracing | undefined;
}

/**
 * The tracing of this process: the last host started with tracing on. For what runs beside
 * any one host, such as an agent interpreter `runPythonAgent` starts (OpenTelemetry's own
 * tracer provider is per process too).
 */
export const processTracing: TracingSlot = { current: undefined };
