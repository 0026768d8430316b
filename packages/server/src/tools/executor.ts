import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Tool, ToolContext } from "./define.js";

export interface InvocationOptions {
  sessionId: string;
  requestId: string;
  /** The longest the call may run: a plain tool until its result, a stream until its end. */
  timeoutMs: number;
  /** Streaming tools: the longest wait for the next chunk (ignored for plain tools). */
  idleTimeoutMs: number;
  exposeStackTraces: boolean;
}

/** A Timeout whose details say which timeout expired ("total" or "idle") and its length. */
function timeout(message: string, which: "total" | "idle", timeoutMs: number): BridgeError {
  return new BridgeError(ErrorType.Timeout, message, {
    details: { timeout: which, timeout_ms: String(timeoutMs) },
  });
}

/** Whether a handler returned a promise (or any thenable) rather than a plain value. */
function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** What a tool sees of its call; the signal comes from the invocation when first read. */
class InvocationContext implements ToolContext {
  readonly sessionId: string;
  readonly requestId: string;
  readonly toolName: string;
  readonly #invocation: ToolInvocation;

  constructor(invocation: ToolInvocation) {
    this.#invocation = invocation;
    this.sessionId = invocation.options.sessionId;
    this.requestId = invocation.options.requestId;
    this.toolName = invocation.tool.name;
  }

  get signal(): AbortSignal {
    return this.#invocation.signal;
  }
}

/**
 * One call of one tool: owns the AbortSignal the tool sees, enforces the timeouts and
 * turns whatever the tool throws into a BridgeError.
 *
 * The AbortController is created only when the tool reads `ctx.signal`, and the timer
 * and abort race only run while the call waits on a promise: profiles of the host showed
 * AbortController creation as the largest single cost of a small call. A stream has one
 * more timer, its total budget, from its first chunk request to its end.
 */
export class ToolInvocation {
  readonly startedAt = performance.now();
  private controller: AbortController | undefined;
  private abortReason: BridgeError | undefined;
  /** Rejects the wait in progress (see `untilAborted`) when the call is aborted. */
  private rejectWait: ((reason: BridgeError) => void) | undefined;
  private totalTimer: NodeJS.Timeout | undefined;
  private readonly context: ToolContext;

  constructor(
    readonly tool: Tool,
    private readonly args: Record<string, unknown>,
    readonly options: InvocationOptions,
  ) {
    this.context = new InvocationContext(this);
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Aborts the call; the tool's signal fires with `reason`. Later aborts are ignored. */
  abort(reason: BridgeError): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.stopTotalTimer();
    this.controller?.abort(reason);
    this.rejectWait?.(reason);
  }

  /** Runs a plain tool to its result. */
  async run(): Promise<unknown> {
    try {
      if (this.abortReason !== undefined) throw this.abortReason;
      const output = this.tool.handler(this.args, this.context);
      // A plain value needs no timer or race: nothing could have interrupted synchronous code.
      return isPromiseLike(output) ? await this.untilAborted(output, this.options.timeoutMs) : output;
    } catch (error) {
      throw this.normalize(error);
    }
  }

  /**
   * Waits for something the call depends on besides the tool (e.g. a slow reader making
   * room for the next chunk): an abort, a stream's total budget included, ends the wait.
   */
  async waitFor<T>(pending: PromiseLike<T>): Promise<T> {
    return this.untilAborted(pending, undefined);
  }

  /**
   * Starts a streaming tool. Each `next()` of the returned iterator is bounded by the idle
   * timeout and by abort; the whole stream by the total budget (`timeoutMs`), which
   * starts with the first `next()`. A plain tool streams its result as a single chunk.
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
        try {
          if (this.abortReason !== undefined) throw this.abortReason;
          if (source === undefined) {
            this.startTotalTimer();
            source = open();
          }
          const output = source.next();
          const step = isPromiseLike(output)
            ? await this.untilAborted(output, this.options.idleTimeoutMs)
            : output;
          if (step.done) this.stopTotalTimer();
          return step;
        } catch (error) {
          throw this.normalize(error);
        }
      },
      close: () => {
        this.stopTotalTimer();
        // Lets the generator run its finally blocks; not awaited, it may be stuck on I/O.
        const closing = source?.return?.();
        if (closing instanceof Promise) closing.catch(() => {});
      },
    };
  }

  /** Waits for `pending`, bounded by `timeoutMs` when given; an abort (or the timeout) ends the wait at once. */
  private async untilAborted<T>(pending: PromiseLike<T>, timeoutMs: number | undefined): Promise<T> {
    const settled = Promise.resolve(pending);
    // A tool that rejects after we stopped waiting must not become an unhandled rejection.
    settled.catch(() => {});
    const aborted = new Promise<never>((_, reject) => {
      if (this.abortReason !== undefined) reject(this.abortReason);
      this.rejectWait = reject;
    });
    const timer = timeoutMs === undefined ? undefined : this.startTimer(timeoutMs);
    try {
      return await Promise.race([settled, aborted]);
    } finally {
      clearTimeout(timer);
      this.rejectWait = undefined;
    }
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /** The timer of one wait on the tool: a plain tool's whole call, or a stream's idle timeout. */
  private startTimer(timeoutMs: number): NodeJS.Timeout {
    return setTimeout(() => {
      const streaming = this.tool.streaming;
      const message = streaming
        ? `tool '${this.tool.name}' produced no chunk within ${timeoutMs} ms (its idle timeout)`
        : `tool '${this.tool.name}' did not finish within ${timeoutMs} ms`;
      this.abort(timeout(message, streaming ? "idle" : "total", timeoutMs));
    }, timeoutMs);
  }

  private startTotalTimer(): void {
    const { timeoutMs } = this.options;
    this.totalTimer = setTimeout(() => {
      const message = `the stream of tool '${this.tool.name}' ran past its total budget of ${timeoutMs} ms`;
      this.abort(timeout(message, "total", timeoutMs));
    }, timeoutMs);
  }

  private stopTotalTimer(): void {
    if (this.totalTimer === undefined) return;
    clearTimeout(this.totalTimer);
    this.totalTimer = undefined;
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
