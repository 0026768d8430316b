/**
 * The host's spans over the OpenTelemetry API (docs/tracing.md lists each span and
 * attribute). Imported only when the host traces (tracing/start.ts). Spans go to the
 * global tracer provider: the application's, when it registered one, else the SDK this
 * host starts from the OTEL_* variables (tracing/sdk.ts).
 */
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { decodeValue, type pbValues } from "@toolbridge/core";
import type {
  ClientSpan,
  IncomingCarrier,
  RpcSpan,
  SpanAttributes,
  ToolSpan,
  ToolSpanEnd,
  ToolSpanStart,
  TraceCarrier,
  Tracing,
} from "./contract.js";

/** The instrumentation scope of the host's spans. */
const SCOPE = "@toolbridge/server";
const MAX_NAME = 128;

/** Reads W3C headers from gRPC metadata or from a plain object (a Calls frame's trace_context). */
const carrierGetter: TextMapGetter<IncomingCarrier> = {
  keys: (carrier) => Object.keys(isMetadata(carrier) ? carrier.getMap() : carrier),
  get: (carrier, key) => {
    if (!isMetadata(carrier)) return (carrier as TraceCarrier)[key];
    const value = carrier.get(key)[0];
    return typeof value === "string" ? value : undefined;
  },
};

function isMetadata(carrier: IncomingCarrier): carrier is Exclude<IncomingCarrier, TraceCarrier> {
  return typeof (carrier as { getMap?: unknown }).getMap === "function";
}

/** What a host's spans say about it. */
export interface SpanOptions {
  /** This node's id among the hosts sharing a store; absent for a host on its own. */
  readonly node?: string;
  /** Record tool arguments and results (gen_ai.tool.call.arguments / .result). */
  readonly content: boolean;
  /** Stops the SDK this host started, if it started one; called by `shutdown`. */
  readonly stop: () => Promise<void>;
}

/** The host's Tracing over the global tracer provider and propagator. */
export function openTracing(options: SpanOptions): Tracing {
  return new HostSpans(trace.getTracer(SCOPE), propagatorOf(), options);
}

/**
 * The propagator the application registered, else W3C trace context and baggage: a host
 * embedded in an application that registered a tracer provider but no propagator still
 * reads and writes the W3C headers its clients and workers send.
 */
function propagatorOf(): TextMapPropagator {
  if (propagation.fields().length > 0) return propagation;
  return new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  });
}

class HostSpans implements Tracing {
  constructor(
    private readonly tracer: Tracer,
    private readonly propagator: TextMapPropagator,
    private readonly options: SpanOptions,
  ) {}

  serverSpan(method: string, carrier: IncomingCarrier): RpcSpan {
    const parent = this.propagator.extract(ROOT_CONTEXT, carrier, carrierGetter);
    // rpc.service is the span's name before the slash: not repeated, as every byte of every
    // span is encoded again when it is exported.
    const span = this.tracer.startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: { "rpc.system": "grpc", "rpc.method": method.slice(method.lastIndexOf("/") + 1) },
      },
      parent,
    );
    return new ServerSpan(span, trace.setSpan(parent, span), this.propagator);
  }

  toolSpan(start: ToolSpanStart): ToolSpan {
    const name = start.toolId.slice(0, MAX_NAME);
    const attributes: Attributes = {
      "gen_ai.operation.name": "execute_tool",
      "gen_ai.tool.name": name,
      "gen_ai.tool.call.id": start.requestId,
      "toolbridge.session.id": start.sessionId,
      "toolbridge.principal": start.principal,
      "toolbridge.protocol": start.protocol,
    };
    // What is usually false is recorded only when true: each attribute is encoded again per export.
    if (start.streamed) attributes["toolbridge.streamed"] = true;
    if (this.options.node !== undefined) attributes["toolbridge.node"] = this.options.node;
    if (this.options.content) attributes["gen_ai.tool.call.arguments"] = argumentsJson(start);
    const parent = context.active();
    const span = this.tracer.startSpan(
      `execute_tool ${name}`,
      { kind: SpanKind.INTERNAL, attributes },
      parent,
    );
    return new CallSpan(span, trace.setSpan(parent, span), this.propagator, this.options.content);
  }

  clientSpan(method: string, attributes: SpanAttributes): ClientSpan {
    const parent = context.active();
    const slash = method.lastIndexOf("/");
    const span = this.tracer.startSpan(
      method,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "rpc.system": "grpc",
          "rpc.service": method.slice(0, slash),
          "rpc.method": method.slice(slash + 1),
          ...attributes,
        },
      },
      parent,
    );
    return new OutgoingSpan(span, trace.setSpan(parent, span), this.propagator);
  }

  activeCarrier(): TraceCarrier {
    const carrier: Record<string, string> = {};
    this.propagator.inject(context.active(), carrier, defaultTextMapSetter);
    return carrier;
  }

  shutdown(): Promise<void> {
    return this.options.stop();
  }
}

/** A span with the context it is active in. */
class ContextSpan {
  constructor(
    protected readonly span: Span,
    private readonly active: Context,
    private readonly propagator: TextMapPropagator,
  ) {}

  within<T>(fn: () => T): T {
    return context.with(this.active, fn);
  }

  carrier(): TraceCarrier {
    const carrier: Record<string, string> = {};
    this.propagator.inject(this.active, carrier, defaultTextMapSetter);
    return carrier;
  }
}

class ServerSpan extends ContextSpan implements RpcSpan {
  end(code: number, message?: string): void {
    this.span.setAttribute("rpc.grpc.status_code", code);
    // A server span is an error only for the codes that mean the server failed (OpenTelemetry's gRPC conventions).
    if (SERVER_ERROR_CODES.has(code)) this.span.setStatus({ code: SpanStatusCode.ERROR, message });
    this.span.end();
  }
}

/** UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. */
const SERVER_ERROR_CODES = new Set([2, 4, 12, 13, 14, 15]);

class CallSpan extends ContextSpan implements ToolSpan {
  constructor(
    span: Span,
    active: Context,
    propagator: TextMapPropagator,
    private readonly content: boolean,
  ) {
    super(span, active, propagator);
  }

  end(outcome: ToolSpanEnd): void {
    const { span } = this;
    if (outcome.replayed) span.setAttribute("toolbridge.replayed", true);
    if (outcome.remoteNode !== undefined) span.setAttribute("toolbridge.remote.node", outcome.remoteNode);
    if (outcome.chunks !== undefined) span.setAttribute("toolbridge.stream.chunks", outcome.chunks);
    if (outcome.errorType !== undefined) {
      span.setAttribute("error.type", outcome.errorType);
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.errorMessage });
    } else if (this.content && outcome.result !== undefined) {
      span.setAttribute("gen_ai.tool.call.result", valueJson(outcome.result));
    }
    span.end();
  }
}

class OutgoingSpan extends ContextSpan implements ClientSpan {
  end(errorType?: string, message?: string): void {
    if (errorType !== undefined) {
      this.span.setAttribute("error.type", errorType);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    this.span.end();
  }
}

/** A call's arguments as JSON text: `{"args": [...], "kwargs": {...}}`, or the kwargs alone. */
function argumentsJson(start: ToolSpanStart): string {
  const kwargs = Object.fromEntries(
    Object.entries(start.kwargs).map(([key, value]) => [key, decoded(value)]),
  );
  if (start.args.length === 0) return jsonText(kwargs);
  return jsonText({ args: start.args.map(decoded), kwargs });
}

function valueJson(value: pbValues.Value): string {
  return jsonText(decoded(value));
}

function decoded(value: pbValues.Value): unknown {
  try {
    return decodeValue(value);
  } catch {
    return "(a value that cannot be decoded)";
  }
}

/** JSON text of a decoded value: big integers as decimal text, bytes as their length, maps as objects. */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === "bigint") return item.toString();
    if (item instanceof Uint8Array) return `(${item.length} bytes)`;
    if (item instanceof Map) return Object.fromEntries(item);
    return item;
  });
}
