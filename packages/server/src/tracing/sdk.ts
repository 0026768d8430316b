/**
 * The OpenTelemetry SDK a host starts when it traces and the application registered no
 * tracer provider of its own: a NodeTracerProvider configured by the standard OTEL_*
 * variables (resource, sampler, batch processor, exporter and its endpoint), registered
 * globally with the propagators OTEL_PROPAGATORS names, and the ioredis instrumentation.
 * Imported only when the host traces. Several hosts of one process share one SDK; the last
 * of them to stop flushes and shuts it down.
 */
import { createRequire } from "node:module";
import { diag } from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  processDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

/** What a host reports of the SDK it started, for its log line. */
export interface StartedSdk {
  readonly exporters: readonly string[];
  readonly redisInstrumented: boolean;
  /** Releases this host's use of the SDK: the last user flushes and shuts it down. */
  release(): Promise<void>;
}

interface Shared {
  readonly provider: NodeTracerProvider;
  readonly exporters: readonly string[];
  readonly redisInstrumented: boolean;
  users: number;
}

let shared: Shared | undefined;

/** Starts the SDK from the environment (or joins the one another host of this process started). */
export async function startSdk(env: NodeJS.ProcessEnv, version: string): Promise<StartedSdk> {
  shared ??= await createSdk(env, version);
  const current = shared;
  current.users++;
  let released = false;
  return {
    exporters: current.exporters,
    redisInstrumented: current.redisInstrumented,
    release: async () => {
      if (released) return;
      released = true;
      if (--current.users > 0) return;
      if (shared === current) shared = undefined;
      await current.provider.shutdown();
    },
  };
}

async function createSdk(env: NodeJS.ProcessEnv, version: string): Promise<Shared> {
  const detected = detectResources({ detectors: [envDetector, hostDetector, processDetector] });
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "toolbridge", "service.version": version }))
    .merge(detected);
  const exporters = exporterNames(env);
  const spanProcessors: SpanProcessor[] = [];
  for (const name of exporters) {
    const exporter = await exporterOf(name, env);
    if (exporter !== undefined) spanProcessors.push(new BatchSpanProcessor(exporter));
  }
  const provider = new NodeTracerProvider({ resource, spanProcessors });
  provider.register({ propagator: propagatorOf(env) });
  const redisInstrumented = instrumentationOn("ioredis", env) ? await instrumentIoredis(provider) : false;
  return { provider, exporters, redisInstrumented, users: 0 };
}

/** OTEL_TRACES_EXPORTER: "otlp" (the default), "console", "none", comma-separated. */
function exporterNames(env: NodeJS.ProcessEnv): string[] {
  const names = (env.OTEL_TRACES_EXPORTER ?? "otlp")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "" && name !== "none");
  return [...new Set(names)];
}

/** The OTLP exporter of the protocol OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL names; it reads its endpoint, headers and timeout itself. */
async function exporterOf(name: string, env: NodeJS.ProcessEnv): Promise<SpanExporter | undefined> {
  if (name === "console") return new ConsoleSpanExporter();
  if (name !== "otlp") {
    diag.warn(`OTEL_TRACES_EXPORTER: '${name}' is not supported by toolbridge (use otlp, console or none)`);
    return undefined;
  }
  const protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf";
  if (protocol === "grpc") {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-grpc");
    return new OTLPTraceExporter();
  }
  if (protocol === "http/json") {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    return new OTLPTraceExporter();
  }
  const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
  return new OTLPTraceExporter();
}

/** OTEL_PROPAGATORS: "tracecontext,baggage" by default; "none" propagates nothing. */
function propagatorOf(env: NodeJS.ProcessEnv): CompositePropagator {
  const names = (env.OTEL_PROPAGATORS ?? "tracecontext,baggage").split(",").map((name) => name.trim());
  const propagators = [];
  for (const name of new Set(names)) {
    if (name === "tracecontext") propagators.push(new W3CTraceContextPropagator());
    else if (name === "baggage") propagators.push(new W3CBaggagePropagator());
    else if (name !== "none" && name !== "")
      diag.warn(
        `OTEL_PROPAGATORS: '${name}' is not supported by toolbridge (use tracecontext, baggage or none)`,
      );
  }
  return new CompositePropagator({ propagators });
}

/**
 * Whether the instrumentation `name` is on: the variables of OpenTelemetry's Node
 * auto-instrumentation, OTEL_NODE_ENABLED_INSTRUMENTATIONS (when set, only those) and
 * OTEL_NODE_DISABLED_INSTRUMENTATIONS.
 */
function instrumentationOn(name: string, env: NodeJS.ProcessEnv): boolean {
  const listed = (value: string | undefined) =>
    value?.split(",").some((item) => item.trim() === name) === true;
  const enabled = env.OTEL_NODE_ENABLED_INSTRUMENTATIONS;
  if (enabled !== undefined && enabled.trim() !== "" && !listed(enabled)) return false;
  return !listed(env.OTEL_NODE_DISABLED_INSTRUMENTATIONS);
}

/**
 * Redis round trips as spans, with OpenTelemetry's ioredis instrumentation. The host has
 * imported ioredis (an ES module importing a CommonJS one) before tracing starts, so no
 * import hook would see it again: the instrumentation's require hook patches the module's
 * class when it is required once more here, the same object the host's import holds.
 */
async function instrumentIoredis(provider: NodeTracerProvider): Promise<boolean> {
  const { IORedisInstrumentation } = await import("@opentelemetry/instrumentation-ioredis");
  const instrumentation = new IORedisInstrumentation({ enabled: false });
  instrumentation.setTracerProvider(provider);
  instrumentation.enable();
  try {
    createRequire(import.meta.url)("ioredis");
    return true;
  } catch {
    return false;
  }
}
