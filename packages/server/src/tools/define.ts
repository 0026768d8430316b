import {
  BridgeError,
  type EncodingGuide,
  ErrorType,
  encodeValue,
  encodingGuide,
  listGuide,
  pb,
} from "@toolbridge/core";
import { z } from "zod";
import { type ToolLimitOptions, type ToolLimits, validateLimits } from "./limits.js";

/** What a tool function receives besides its arguments. */
export interface ToolContext {
  /** Fires when the call times out, the client cancels or goes away, or the host shuts down. */
  readonly signal: AbortSignal;
  readonly sessionId: string;
  readonly requestId: string;
  readonly toolName: string;
  /**
   * When the call must end, in epoch milliseconds (`Date.now()`'s clock): its timeout counted
   * from the tool's start (a stream's from its first chunk request). The signal fires then.
   * Pass it on to work the tool hands elsewhere. Infinity for a call without a timeout.
   */
  readonly deadline: number;
}

// biome-ignore lint/suspicious/noExplicitAny: zod's own bound for "any object schema".
export type ParametersSchema = z.ZodObject<any>;
type EmptyParameters = z.ZodObject<Record<never, never>>;

interface CommonToolOptions<P extends ParametersSchema> extends ToolLimitOptions {
  /** Letters, digits, '_', '.', '-'; at most 128 characters, starting with a letter or '_'. */
  name: string;
  description: string;
  /** A zod object schema; its key order is the order positional arguments bind in. */
  parameters?: P;
  /**
   * Longest a call may run: a plain tool until its result, a streaming tool until its
   * last chunk (the stream's total budget). Default: the host's toolTimeoutMs for plain
   * tools, streamTotalTimeoutMs for streaming ones. A call may ask for less, not more.
   */
  timeoutMs?: number;
  /** Pure: same arguments, same result. Clients may cache the result. */
  cacheable?: boolean;
  /**
   * Safe to call again when the outcome of a call is unknown, even under a new request id
   * (the host's replay covers a retry under the same one for every tool: docs/replay.md).
   */
  idempotent?: boolean;
  metadata?: Record<string, string>;
  /**
   * The result's (a stream: each chunk's) JSON Schema, for a tool whose own runtime checks its
   * results against it, as a Python worker's pydantic does: published as `output_schema` and
   * used to encode plain results, never checked by the host. Give `output` instead for the host
   * to check. A result already encoded where the tool ran (a worker's) is passed on unchanged.
   */
  outputJsonSchema?: Record<string, unknown>;
}

export interface PlainToolOptions<P extends ParametersSchema, R> extends CommonToolOptions<P> {
  streaming?: false;
  /**
   * Schema of the result, exported as JSON Schema in the spec (`output_schema`). A result
   * that fails it is a ToolExecutionError naming the path; a result that passes is sent
   * as the schema says: a `z.number()` stays a float even when integral (docs/values.md).
   */
  output?: z.ZodType<R>;
  handler: (args: z.output<P>, ctx: ToolContext) => R | Promise<R>;
}

export interface StreamingToolOptions<P extends ParametersSchema, C> extends CommonToolOptions<P> {
  streaming: true;
  /** Schema of each chunk: checked and used for encoding as `output` is for a plain tool's result. */
  output?: z.ZodType<C>;
  /**
   * Longest the tool may take to produce its next chunk (the first included); time spent
   * waiting for a slow reader does not count. Default: the host's streamIdleTimeoutMs.
   */
  idleTimeoutMs?: number;
  handler: (args: z.output<P>, ctx: ToolContext) => AsyncIterable<C> | Iterable<C>;
}

type Handler = (args: Record<string, unknown>, ctx: ToolContext) => unknown;

const TOOL_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/** A tool ready to register: validated options plus its precomputed wire spec. */
export class Tool {
  readonly name: string;
  readonly description: string;
  readonly streaming: boolean;
  readonly parameters: ParametersSchema;
  /** Parameter names in schema order (the order positional arguments bind in). */
  readonly parameterNames: readonly string[];
  /** True when the schema accepts keys it does not name (z.looseObject / catchall). */
  readonly acceptsExtraArguments: boolean;
  readonly output: z.ZodType | undefined;
  /** How results (a streaming tool: chunks) are encoded: from the output schema, if any. */
  readonly outputGuide: EncodingGuide | undefined;
  /** How a list of all a streaming tool's chunks is encoded (a stream called as a plain call). */
  readonly collectedGuide: EncodingGuide | undefined;
  readonly handler: Handler;
  readonly timeoutMs: number | undefined;
  /** Streaming tools: the declared idle timeout. */
  readonly idleTimeoutMs: number | undefined;
  readonly cacheable: boolean;
  readonly idempotent: boolean;
  /** Concurrency and rate limits (0 = unlimited), enforced by the host before the tool runs. */
  readonly limits: ToolLimits;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly specs = new Map<pb.ToolScope, pb.ToolSpec>();
  private readonly outputSchema: string;

  /** @internal use defineTool() */
  constructor(
    options: PlainToolOptions<ParametersSchema, unknown> | StreamingToolOptions<ParametersSchema, unknown>,
  ) {
    if (!TOOL_NAME.test(options.name)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `invalid tool name ${JSON.stringify(options.name)}: use letters, digits, '_', '.', '-' ` +
          "(at most 128, starting with a letter or '_')",
      );
    }
    const parameters = options.parameters ?? (z.object({}) as EmptyParameters);
    if (!(parameters instanceof z.ZodObject)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `tool '${options.name}': parameters must be a zod object schema (z.object({...}))`,
      );
    }
    const idleTimeoutMs = options.streaming === true ? options.idleTimeoutMs : undefined;
    checkTimeout(options.name, "timeoutMs", options.timeoutMs);
    checkTimeout(options.name, "idleTimeoutMs", idleTimeoutMs);
    if (options.output !== undefined && options.outputJsonSchema !== undefined) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `tool '${options.name}': give output (checked by the host) or outputJsonSchema (checked where ` +
          "the tool runs), not both",
        { details: { field: "outputJsonSchema" } },
      );
    }
    const catchall = parameters.def.catchall;
    this.name = options.name;
    this.description = options.description;
    this.streaming = options.streaming === true;
    this.parameters = parameters;
    this.parameterNames = Object.keys(parameters.shape);
    this.acceptsExtraArguments = catchall !== undefined && catchall._zod.def.type !== "never";
    this.output = options.output;
    const output =
      options.output === undefined
        ? options.outputJsonSchema
        : z.toJSONSchema(options.output, { unrepresentable: "any" });
    this.outputSchema = output === undefined ? "" : JSON.stringify(output);
    this.outputGuide = encodingGuide(output);
    this.collectedGuide = this.outputGuide && listGuide(this.outputGuide);
    this.handler = options.handler as Handler;
    this.timeoutMs = options.timeoutMs;
    this.idleTimeoutMs = idleTimeoutMs;
    this.cacheable = options.cacheable ?? false;
    this.idempotent = options.idempotent ?? false;
    this.limits = validateLimits(options.name, options);
    this.metadata = Object.freeze({ ...(options.metadata ?? {}) });
    // Built now so that a schema JSON Schema cannot express fails at registration, not per call.
    this.spec(pb.ToolScope.TOOL_SCOPE_GLOBAL);
  }

  /** The wire description of this tool, as ListTools returns it. */
  spec(scope: pb.ToolScope): pb.ToolSpec {
    let spec = this.specs.get(scope);
    if (spec === undefined) {
      spec = buildSpec(this, this.outputSchema, scope);
      this.specs.set(scope, spec);
    }
    return spec;
  }
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function checkTimeout(tool: string, key: "timeoutMs" | "idleTimeoutMs", value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0 && value <= MAX_TIMEOUT_MS)) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `tool '${tool}': ${key} must be a positive integer of milliseconds (at most ${MAX_TIMEOUT_MS})`,
      { details: { field: key } },
    );
  }
}

export function defineTool<P extends ParametersSchema = EmptyParameters, R = unknown>(
  options: PlainToolOptions<P, R>,
): Tool;
export function defineTool<P extends ParametersSchema = EmptyParameters, C = unknown>(
  options: StreamingToolOptions<P, C>,
): Tool;
export function defineTool(
  options: PlainToolOptions<ParametersSchema, unknown> | StreamingToolOptions<ParametersSchema, unknown>,
): Tool {
  return new Tool(options);
}

interface JsonSchemaProperty {
  type?: unknown;
  description?: unknown;
  default?: unknown;
}

function buildSpec(tool: Tool, outputSchema: string, scope: pb.ToolScope): pb.ToolSpec {
  const schema = z.toJSONSchema(tool.parameters, { io: "input", unrepresentable: "any" }) as {
    properties?: Record<string, JsonSchemaProperty>;
    required?: string[];
  };
  const required = new Set(schema.required ?? []);
  const parameters = tool.parameterNames.map((name): pb.ParameterSpec => {
    const property = schema.properties?.[name] ?? {};
    return {
      name,
      type: typeof property.type === "string" ? property.type : "",
      description: typeof property.description === "string" ? property.description : "",
      required: required.has(name),
      defaultValue: "default" in property ? encodeValue(property.default) : undefined,
    };
  });
  return {
    name: tool.name,
    description: tool.description,
    type: tool.streaming ? pb.ToolType.TOOL_TYPE_STREAMING : pb.ToolType.TOOL_TYPE_STANDARD,
    parametersSchema: JSON.stringify(schema),
    outputSchema,
    parameters,
    limits: { timeoutMs: tool.timeoutMs ?? 0, idleTimeoutMs: tool.idleTimeoutMs ?? 0, ...tool.limits },
    cacheable: tool.cacheable,
    idempotent: tool.idempotent,
    scope,
    metadata: { ...tool.metadata },
  };
}
