/**
 * One mounted MCP server, supervised: the host connects at start, notices when the server
 * exits or stops answering, and reconnects with backoff (250 ms doubling up to the mount's
 * `maxReconnectDelayMs`). Meanwhile calls fail at once with Unavailable instead of waiting.
 * A stdio server is a child process the host starts again on each reconnect.
 */
import type { CallToolResult, Tool as McpTool, Transport } from "@modelcontextprotocol/client";
import {
  Client,
  ProtocolError,
  ProtocolErrorCode,
  SdkError,
  SdkErrorCode,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Logger } from "pino";
import type { McpServerConfig } from "./config.js";
import { DirectCalls } from "./direct-calls.js";
import { ProgressRelay, type ProgressSink } from "./progress-relay.js";
import { StderrTail } from "./stderr-tail.js";

export type MountState = "connecting" | "connected" | "reconnecting" | "stopped";

export interface ConnectionEvents {
  /** Connected (again): the server's tools as it lists them now. */
  onTools(tools: readonly McpTool[]): void;
  /** The connection was lost; calls fail with Unavailable until the next onTools. */
  onDown(reason: string): void;
}

export interface CallOptions {
  readonly signal: AbortSignal;
  readonly onProgress?: ProgressSink;
}

const FIRST_RETRY_MS = 250;

export class MountConnection {
  state: MountState = "connecting";
  /** Why the last connection attempt failed or the connection was lost. */
  lastError = "";
  /** Connections made since the host started (1 once first connected). */
  connections = 0;
  private client: Client | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly stderr = new StderrTail();
  private readonly relay = new ProgressRelay();
  /** The connection's plain JSON-RPC calls, on a 2025-era connection. */
  private direct: DirectCalls | undefined;

  constructor(
    readonly name: string,
    private readonly config: McpServerConfig,
    private readonly version: string,
    private readonly log: Logger,
    private readonly events: ConnectionEvents,
  ) {}

  /** Where the server is: its command line or URL (without credentials). */
  get target(): string {
    const { command, args, url } = this.config;
    return command !== undefined ? [command, ...args].join(" ") : (url ?? "");
  }

  /** Makes the first connection attempt; a failure is logged and retried in the background. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Calls a tool of the server; Unavailable at once while it is not connected. */
  async call(tool: string, args: Record<string, unknown>, options: CallOptions): Promise<CallToolResult> {
    const client = this.client;
    if (client === undefined || this.state !== "connected") throw this.unavailable();
    const progress = options.onProgress === undefined ? undefined : this.relay.open(options.onProgress);
    const params = {
      name: tool,
      arguments: args,
      ...(progress === undefined ? {} : { _meta: { progressToken: progress.token } }),
    };
    try {
      if (this.direct !== undefined) return await this.direct.call(params, options.signal);
      // The engine's timeout (and the signal) bounds the call; the SDK's 60 s default must not.
      const result = await client.callTool(params, { signal: options.signal, timeout: 2 ** 31 - 1 });
      return result as CallToolResult;
    } catch (error) {
      if (options.signal.aborted) throw options.signal.reason;
      throw this.callFailure(client, tool, error);
    } finally {
      progress?.close();
    }
  }

  /** Closes the connection (a stdio server is stopped) and stops reconnecting. */
  async stop(): Promise<void> {
    this.state = "stopped";
    clearTimeout(this.retryTimer);
    clearInterval(this.healthTimer);
    const client = this.client;
    this.client = undefined;
    this.direct?.close("the host is stopping");
    await client?.close().catch(() => {});
  }

  /** A method, not a field read, so that the compiler does not narrow it across awaits. */
  private get stopped(): boolean {
    return this.state === "stopped";
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new Client(
      { name: "toolbridge", version: this.version },
      this.config.url === undefined ? {} : { versionNegotiation: { mode: "auto" } },
    );
    client.onerror = (error) => this.log.debug({ err: error, mount: this.name }, "MCP mount transport error");
    try {
      const transport = this.transport();
      await withTimeout(client.connect(transport), this.config.connectTimeoutMs, "connecting");
      const direct = client.getProtocolEra() === "legacy" ? new DirectCalls(transport) : undefined;
      this.tap(transport, direct);
      const { tools } = await withTimeout(
        client.listTools(),
        this.config.connectTimeoutMs,
        "listing its tools",
      );
      if (this.stopped) {
        await client.close();
        return;
      }
      client.onclose = () => this.lost(client, "the connection closed: the server exited or hung up");
      this.client = client;
      this.direct = direct;
      this.state = "connected";
      this.attempt = 0;
      this.connections++;
      this.log.info({ mount: this.name, tools: tools.length, server: this.target }, "MCP server mounted");
      this.events.onTools(tools);
      this.watchHealth(client);
    } catch (error) {
      await client.close().catch(() => {});
      this.lastError = `${describe(error)}${this.stderr.text()}`;
      this.log.warn(
        { mount: this.name, server: this.target, err: this.lastError },
        "cannot connect to an MCP server; retrying",
      );
      this.retryLater();
    }
  }

  private transport() {
    const { command, args, env, cwd, url, headers } = this.config;
    if (command !== undefined) {
      const transport = new StdioClientTransport({
        command,
        args,
        env: { ...getDefaultEnvironment(), ...env },
        ...(cwd === undefined ? {} : { cwd }),
        stderr: "pipe",
      });
      this.stderr.follow(transport.stderr, (line) =>
        this.log.debug({ mount: this.name, line }, "MCP server stderr"),
      );
      return transport;
    }
    const { tokenEnv } = this.config;
    const token = this.config.token ?? (tokenEnv === undefined ? undefined : process.env[tokenEnv]);
    if (tokenEnv !== undefined && token === undefined) {
      throw new Error(`the environment variable ${tokenEnv} (its tokenEnv) is not set`);
    }
    const auth: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    return new StreamableHTTPClientTransport(new URL(url as string), {
      requestInit: { headers: { ...headers, ...auth } },
    });
  }

  /**
   * Reads the transport's messages before the SDK client does: progress for the calls
   * waiting on it, and the answers to direct calls (which the client never sent).
   */
  private tap(transport: Transport, direct: DirectCalls | undefined): void {
    const inner = transport.onmessage;
    transport.onmessage = (message, extra) => {
      this.relay.deliver(message);
      if (direct?.settle(message) === true) return;
      inner?.call(transport, message, extra);
    };
  }

  /** Asks a connected server for its tools now and then: a server gone is noticed between calls too. */
  private watchHealth(client: Client): void {
    clearInterval(this.healthTimer);
    const every = this.config.healthIntervalMs;
    if (every === 0) return;
    this.healthTimer = setInterval(() => {
      if (this.client !== client) return;
      // Past the SDK's response cache: the point is to hear from the server.
      const listed = client.listTools(undefined, { cacheMode: "bypass" });
      withTimeout(listed, this.config.connectTimeoutMs, "listing its tools").then(
        ({ tools }) => {
          if (this.client === client) this.events.onTools(tools);
        },
        (error: unknown) => this.lost(client, `its health check failed: ${describe(error)}`),
      );
    }, every);
    this.healthTimer.unref();
  }

  /** The connection `client` is gone: report it and reconnect (once per connection). */
  private lost(client: Client, reason: string): void {
    if (this.client !== client || this.state === "stopped") return;
    this.client = undefined;
    this.direct?.close(reason);
    this.direct = undefined;
    clearInterval(this.healthTimer);
    this.lastError = reason;
    this.log.warn({ mount: this.name, server: this.target, reason }, "lost an MCP server; reconnecting");
    this.events.onDown(reason);
    client.close().catch(() => {});
    this.retryLater();
  }

  private retryLater(): void {
    if (this.state === "stopped") return;
    this.state = this.connections === 0 ? "connecting" : "reconnecting";
    const delay = Math.min(this.config.maxReconnectDelayMs, FIRST_RETRY_MS * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    // Jitter keeps hosts restarted together from reconnecting in step.
    this.retryTimer = setTimeout(() => void this.connect(), delay * (0.75 + Math.random() * 0.5));
    this.retryTimer.unref();
  }

  private unavailable(): BridgeError {
    const why = this.lastError === "" ? "" : ` (${this.lastError})`;
    return new BridgeError(
      ErrorType.Unavailable,
      `MCP server '${this.name}' is not connected${why}; the host is reconnecting, retry later`,
      { details: { mount: this.name, reason: "mcp_server_down", retriable: "true" } },
    );
  }

  /** A failed call as the bridge's error; a lost connection also starts reconnecting. */
  private callFailure(client: Client, tool: string, error: unknown): BridgeError {
    if (isConnectionFailure(error)) {
      this.lost(client, describe(error));
      return this.unavailable();
    }
    if (error instanceof ProtocolError && error.code === ProtocolErrorCode.InvalidParams) {
      return new BridgeError(
        ErrorType.ValidationError,
        `MCP server '${this.name}' refused the call of ${tool}: ${error.message}`,
        {
          details: { mount: this.name, mcp_code: String(error.code) },
        },
      );
    }
    if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) {
      return new BridgeError(
        ErrorType.Timeout,
        `MCP server '${this.name}' did not answer the call of ${tool}`,
        {
          details: { mount: this.name, timeout: "total" },
        },
      );
    }
    return new BridgeError(
      ErrorType.ToolExecutionError,
      `MCP server '${this.name}' failed the call of ${tool}: ${describe(error)}`,
      {
        details: {
          mount: this.name,
          ...(error instanceof ProtocolError ? { mcp_code: String(error.code) } : {}),
        },
      },
    );
  }
}

/** Whether a failure means the connection is gone (the server exited, hung up or cannot be reached). */
function isConnectionFailure(error: unknown): boolean {
  if (error instanceof SdkError) {
    return [SdkErrorCode.ConnectionClosed, SdkErrorCode.NotConnected, SdkErrorCode.SendFailed].includes(
      error.code,
    );
  }
  if (error instanceof ProtocolError) return false;
  // fetch's own failures (ECONNREFUSED, a reset): a TypeError whose cause names the socket error.
  return (
    error instanceof TypeError ||
    (error instanceof Error && /ECONN|EPIPE|socket|fetch failed/i.test(error.message))
  );
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${ms} ms while ${what} (connectTimeoutMs)`)),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
