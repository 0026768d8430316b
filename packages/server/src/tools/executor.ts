import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Tool, ToolContext } from "./define.js";

export interface InvocationOptions {
  sessionId: string;
  requestId: string;
  /** Plain tools: the whole call; streaming tools: the longest wait for the next chunk. */
  timeoutMs: number;
  exposeStackTraces: boolean;
}

/**
 * One call of one tool: owns the AbortController the tool sees, enforces the
 * timeout and turns whatever the tool throws into a BridgeError.
 */
export class ToolInvocation {
  readonly startedAt = performance.now();
  private readonly controller = new AbortController();
  private readonly context: ToolContext;
  /** Rejects with the abort reason; raced against the tool so an abort ends the wait at once. */
  private readonly aborted: Promise<never>;

  constructor(
    readonly tool: Tool,
    private readonly args: Record<string, unknown>,
    private readonly options: InvocationOptions,
  ) {
    this.context = {
      signal: this.controller.signal,
      sessionId: options.sessionId,
      requestId: options.requestId,
      toolName: tool.name,
    };
    this.aborted = new Promise<never>((_, reject) => {
      this.controller.signal.addEventListener("abort", () => reject(this.controller.signal.reason), {
        once: true,
      });
    });
    this.aborted.catch(() => {});
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Aborts the call; the tool's signal fires with `reason`. Later aborts are ignored. */
  abort(reason: BridgeError): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Runs a plain tool to its result. */
  async run(): Promise<unknown> {
    const { tool } = this;
    const timer = this.startTimer();
    try {
      const pending = Promise.resolve().then(() => tool.handler(this.args, this.context));
      // A tool that rejects after we stopped waiting must not become an unhandled rejection.
      pending.catch(() => {});
      const result = await Promise.race([pending, this.aborted]);
      return this.checkOutput(result);
    } catch (error) {
      throw this.normalize(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Starts a streaming tool; each `next()` of the returned iterator is bounded by the
   * timeout and by abort. A plain tool streams its result as a single chunk.
   */
  stream(): AsyncIterator<unknown> & { close(): void } {
    if (!this.tool.streaming) {
      let done = false;
      return {
        next: async () => {
          if (done) return { done: true, value: undefined };
          done = true;
          return { done: false, value: await this.run() };
        },
        close: () => {},
      };
    }
    let source: Iterator<unknown> | AsyncIterator<unknown> | undefined;
    const open = () => {
      const iterable = this.tool.handler(this.args, this.context) as
        | AsyncIterable<unknown>
        | Iterable<unknown>;
      if (iterable !== null && typeof iterable === "object") {
        if (Symbol.asyncIterator in iterable) return iterable[Symbol.asyncIterator]();
        if (Symbol.iterator in iterable) return iterable[Symbol.iterator]();
      }
      throw new BridgeError(
        ErrorType.ToolExecutionError,
        `streaming tool '${this.tool.name}' must return an async iterable (an async generator)`,
      );
    };
    return {
      next: async () => {
        const timer = this.startTimer();
        try {
          source ??= open();
          const pending = Promise.resolve(source.next());
          pending.catch(() => {});
          const step = await Promise.race([pending, this.aborted]);
          if (!step.done) this.checkOutput(step.value);
          return step;
        } catch (error) {
          throw this.normalize(error);
        } finally {
          clearTimeout(timer);
        }
      },
      close: () => {
        // Lets the generator run its finally blocks; not awaited, it may be stuck on I/O.
        const closing = source?.return?.();
        if (closing instanceof Promise) closing.catch(() => {});
      },
    };
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  private startTimer(): NodeJS.Timeout {
    const { timeoutMs } = this.options;
    return setTimeout(() => {
      const message = this.tool.streaming
        ? `tool '${this.tool.name}' produced no chunk within ${timeoutMs} ms`
        : `tool '${this.tool.name}' did not finish within ${timeoutMs} ms`;
      this.abort(new BridgeError(ErrorType.Timeout, message, { details: { timeout_ms: String(timeoutMs) } }));
    }, timeoutMs);
  }

  private checkOutput(value: unknown): unknown {
    if (this.tool.output === undefined) return value;
    const result = this.tool.output.safeParse(value);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    throw new BridgeError(
      ErrorType.ToolExecutionError,
      `tool '${this.tool.name}' returned a value that does not match its output schema: ` +
        `${issue?.path.join(".") || "(result)"}: ${issue?.message ?? "invalid"}`,
    );
  }

  private normalize(error: unknown): BridgeError {
    if (error instanceof BridgeError) return error;
    const stack: Record<string, string> =
      this.options.exposeStackTraces && error instanceof Error ? { stacktrace: error.stack ?? "" } : {};
    if (error instanceof Error) {
      return new BridgeError(ErrorType.ToolExecutionError, error.message || error.name, {
        details: { exception: error.name, ...stack },
        cause: error,
      });
    }
    return new BridgeError(ErrorType.ToolExecutionError, `tool '${this.tool.name}' threw ${String(error)}`, {
      details: { exception: typeof error },
    });
  }
}
