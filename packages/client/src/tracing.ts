/**
 * W3C trace context on the client's calls (docs/tracing.md): when the application has the
 * OpenTelemetry API installed, every RPC carries the active span's context in its metadata
 * (`traceparent`, `tracestate`, `baggage`, as the registered propagator writes them), so the
 * host's spans continue the caller's trace. Without the API, or with no span active, the
 * metadata is left alone.
 */
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";

/** The part of `@opentelemetry/api` the client uses (it is an optional peer dependency). */
interface TraceApi {
  readonly context: { active(): unknown };
  readonly trace: { getSpanContext(context: unknown): object | undefined };
  readonly propagation: {
    inject(
      context: unknown,
      carrier: grpc.Metadata,
      setter: { set(carrier: grpc.Metadata, key: string, value: string): void },
    ): void;
  };
}

let loaded: TraceApi | null | undefined;

/** The application's `@opentelemetry/api`, once; null when it is not installed. */
function traceApi(): TraceApi | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)("@opentelemetry/api") as TraceApi;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

const metadataSetter = {
  set: (metadata: grpc.Metadata, key: string, value: string) => metadata.set(key, value),
};

/** An interceptor adding the active trace context to each call; undefined without the OpenTelemetry API. */
export function traceContextInterceptor(): grpc.Interceptor | undefined {
  const api = traceApi();
  if (api === null) return undefined;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const active = api.context.active();
        if (api.trace.getSpanContext(active) !== undefined)
          api.propagation.inject(active, metadata, metadataSetter);
        next(metadata, listener);
      },
    });
}
