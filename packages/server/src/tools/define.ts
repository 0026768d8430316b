import { BridgeError, ErrorType, encodeValue, pb } from "@toolbridge/core";
import { z } from "zod";
import { type ToolLimitOptions, type ToolLimits, validateLimits } from "./limits.js";

/** What a tool function receives besides its arguments. */
export interface ToolContext {
  /** Fires when the call times out, the client cancels or goes away, or the host shuts down. */
  readonly signal: AbortSignal;
  readonly sessionId: string;
  readonly requestId: string;
  readonly toolName: string;
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
  /** Longest a call may run (a streaming tool: longest wait for its next chunk); default: the host's. */
  timeoutMs?: number;
  /** Pure: same arguments, same result. Clients may cache the result. */
  cacheable?: boolean;
  /** Safe to call again when the outcome of a call is unknown; clients may retry it. */
  idempotent?: boolean;
  metadata?: Record<string, string>;
}

export interface PlainToolOptions<P extends ParametersSchema, R> extends CommonToolOptions<P> {
  streaming?: false;
  /** Schema of the result; a result that fails it is reported as a ToolExecutionError. */
  output?: z.ZodType<R>;
  handler: (args: z.output<P>, ctx: ToolContext) => R | Promise<R>;
}

export interface StreamingToolOptions<P extends ParametersSchema, C> extends CommonToolOptions<P> {
  streaming: true;
  /** Schema of each chunk. */
  output?: z.ZodType<C>;
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
  readonly handler: Handler;
  readonly timeoutMs: number | undefined;
  readonly cacheable: boolean;
  readonly idempotent: boolean;
  /** Concurrency and rate limits (0 = unlimited), enforced by the host before the tool runs. */
  readonly limits: ToolLimits;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly specs = new Map<pb.ToolScope, pb.ToolSpec>();

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
    if (options.timeoutMs !== undefined && !(Number.isInteger(options.timeoutMs) && options.timeoutMs > 0)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `tool '${options.name}': timeoutMs must be a positive integer`,
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
    this.handler = options.handler as Handler;
    this.timeoutMs = options.timeoutMs;
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
      spec = buildSpec(this, scope);
      this.specs.set(scope, spec);
    }
    return spec;
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

function buildSpec(tool: Tool, scope: pb.ToolScope): pb.ToolSpec {
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
  const output =
    tool.output === undefined ? "" : JSON.stringify(z.toJSONSchema(tool.output, { unrepresentable: "any" }));
  return {
    name: tool.name,
    description: tool.description,
    type: tool.streaming ? pb.ToolType.TOOL_TYPE_STREAMING : pb.ToolType.TOOL_TYPE_STANDARD,
    parametersSchema: JSON.stringify(schema),
    outputSchema: output,
    parameters,
    limits: { timeoutMs: tool.timeoutMs ?? 0, ...tool.limits },
    cacheable: tool.cacheable,
    idempotent: tool.idempotent,
    scope,
    metadata: { ...tool.metadata },
  };
}
