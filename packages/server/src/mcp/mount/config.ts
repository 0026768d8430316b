/**
 * The `mcpServers` configuration key: the MCP servers the host mounts, by name. Each is a
 * command the host starts (stdio) or a Streamable HTTP URL, with which of its tools to take
 * and the limits its calls run under. The same shape as an MCP client's config file, plus
 * the bridge's own keys; a JSON string (environment variable, flag) is parsed the same way.
 */
import { z } from "zod";

const MOUNT_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const NAMESPACE = /^([A-Za-z_][A-Za-z0-9_.-]{0,63})?$/;

const positiveMs = z
  .number()
  .int()
  .min(1)
  .max(2 ** 31 - 1);

const McpServerSchema = z
  .strictObject({
    /** stdio: the program the host starts (and restarts) as the server. */
    command: z.string().min(1).optional(),
    args: z.array(z.string()).default([]),
    /** Environment of the command, on top of a safe default set (PATH, HOME, ...). */
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    /** Streamable HTTP: the server's endpoint URL. */
    url: z.url({ protocol: /^https?$/ }).optional(),
    /** HTTP headers sent with every request to `url`. */
    headers: z.record(z.string(), z.string()).default({}),
    /** A bearer token sent to `url` (`Authorization: Bearer <token>`). */
    token: z.string().min(1).optional(),
    /** The environment variable of the host holding that token (keeps it out of the file). */
    tokenEnv: z.string().min(1).optional(),
    /** The prefix of the tools' names, `<namespace>__<tool>`; default the server's name, "" none. */
    namespace: z.string().regex(NAMESPACE).optional(),
    /** Tools to mount (names or `*` patterns); default all. */
    allow: z.array(z.string().min(1)).optional(),
    /** Tools not to mount (names or `*` patterns), applied after `allow`. */
    deny: z.array(z.string().min(1)).default([]),
    /** Tools (names or patterns) mounted as streaming tools: their progress notifications are chunks. */
    streaming: z.array(z.string().min(1)).default([]),
    /** Longest a call may run; default the host's toolTimeoutMs (streamTotalTimeoutMs streaming). */
    timeoutMs: positiveMs.optional(),
    /** Calls of each tool running at once. */
    maxConcurrentCalls: z.number().int().min(1).max(1_000_000).optional(),
    /** Calls of each tool that may start per minute. */
    rateLimitPerMinute: z.number().int().min(1).max(1_000_000).optional(),
    /** Longest a connection attempt (start, handshake, tool list) may take. */
    connectTimeoutMs: positiveMs.default(10_000),
    /** Longest wait between reconnection attempts (they back off from 250 ms up to it). */
    maxReconnectDelayMs: positiveMs.default(30_000),
    /** How often a connected server is asked for its tools (to see it is alive); 0 never. */
    healthIntervalMs: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(15_000),
  })
  .refine((server) => (server.command === undefined) !== (server.url === undefined), {
    message: "give either `command` (a stdio server) or `url` (a Streamable HTTP server)",
  })
  .refine((server) => server.command === undefined || (server.token ?? server.tokenEnv) === undefined, {
    message: "`token` and `tokenEnv` are for `url` servers; pass a stdio server its secrets in `env`",
  });

export type McpServerConfig = z.output<typeof McpServerSchema>;

const McpServersObject = z.record(
  z.string().regex(MOUNT_NAME, "a server name is a letter, then letters, digits, '_' or '-' (at most 64)"),
  McpServerSchema,
);

/**
 * The `mcpServers` key: an object of servers by name, or its JSON text (what an environment
 * variable or a flag can hold).
 */
export const McpServersSchema = z
  .union([
    McpServersObject,
    z.string().transform((text, ctx) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text === "" ? "{}" : text);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: `not JSON: ${(error as Error).message}` });
        return z.NEVER;
      }
      const result = McpServersObject.safeParse(parsed);
      if (result.success) return result.data;
      const issue = result.error.issues[0];
      const at = issue?.path.join(".") ?? "";
      ctx.addIssue({
        code: "custom",
        message: `${at === "" ? "" : `${at}: `}${issue?.message ?? "invalid"}`,
      });
      return z.NEVER;
    }),
  ])
  .default({});

/** Whether `name` matches one of `patterns` (exact names, `*` matching any run of characters). */
export function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => {
    if (!pattern.includes("*")) return pattern === name;
    const source = pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    return new RegExp(`^${source}$`).test(name);
  });
}

/** Whether a server's tool is mounted: allowed (all, without `allow`) and not denied. */
export function isMounted(config: McpServerConfig, tool: string): boolean {
  if (config.allow !== undefined && !matchesAny(tool, config.allow)) return false;
  return !matchesAny(tool, config.deny);
}

/** The host's name of a server's tool: `<namespace>__<tool>`, or the tool's own without a namespace. */
export function mountedName(serverName: string, config: McpServerConfig, tool: string): string {
  const namespace = config.namespace ?? serverName;
  return namespace === "" ? tool : `${namespace}__${tool}`;
}
