/**
 * Turning tracing on when a host starts: off by default, when `tracing` is set the spans
 * (and, without an application's tracer provider, the OpenTelemetry SDK) are imported then.
 * A host with tracing off imports nothing of OpenTelemetry from here.
 */
import type { Logger } from "pino";
import type { HostConfig } from "../config.js";
import type { Tracing } from "./contract.js";

const SCOPE = "@toolbridge/server";

/** What a host's tracing is started with. */
export interface TracingStart {
  readonly config: Pick<HostConfig, "tracing" | "tracingContent">;
  readonly log: Logger;
  /** This node's id among the hosts sharing a store, for the spans' toolbridge.node. */
  readonly node?: string | undefined;
  readonly version: string;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The host's Tracing when `tracing` is on and OTEL_SDK_DISABLED is not "true", else
 * undefined. Spans go to the tracer provider the application registered, if any (it
 * configured its exporter itself), else to an SDK started from the OTEL_* variables.
 */
export async function startTracing(start: TracingStart): Promise<Tracing | undefined> {
  const { config, log } = start;
  const env = start.env ?? process.env;
  if (!config.tracing) return undefined;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") {
    log.info("tracing is on but OTEL_SDK_DISABLED=true: no spans are recorded");
    return undefined;
  }
  const [{ trace, ProxyTracerProvider }, { openTracing }] = await Promise.all([
    import("@opentelemetry/api"),
    import("./spans.js"),
  ]);
  const registered = trace.getTracerProvider();
  // The API's global provider delegates to nothing until an SDK registers itself.
  const own = registered instanceof ProxyTracerProvider && registered.getDelegateTracer(SCOPE) === undefined;
  if (!own) {
    log.info("tracing on: spans go to the application's tracer provider");
    return openTracing({ node: start.node, content: config.tracingContent, stop: async () => {} });
  }
  const { startSdk } = await import("./sdk.js");
  const sdk = await startSdk(env, start.version);
  log.info(
    {
      exporters: sdk.exporters,
      endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT,
      redis: sdk.redisInstrumented,
    },
    "tracing on: OpenTelemetry SDK started from the OTEL_* environment",
  );
  return openTracing({ node: start.node, content: config.tracingContent, stop: () => sdk.release() });
}
