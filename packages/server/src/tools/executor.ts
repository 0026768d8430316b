import { BridgeError, ErrorType } from "@toolbridge/core";
import type { ActiveSpan } from "../tracing/contract.js";
import type { Tool, ToolContext } from "./define.js";
import { type FaultOutcome, type FaultScope, toolScope } from "./faults.js";

/**
 * What an invocation runs: a registered Tool, or any named function with a tool's calling
 * convention (the worker pool's direct calls, which keep their timeouts here too).
 */
export interface Invocable {
  readonly name: string;
  readonly streaming: boolean;
  readonly handler: (args: Record<string, unknown>, ctx: ToolContext) => unknown;
}

export interface InvocationOptions {
  sessionId: string;
  requestId: string;
  /** The longest the call may run: a plain tool until its result, a stream until its end; 0: no limit. */
  timeoutMs: number;
  /** Streaming tools: the longest wait for the next chunk (ignored for plain tools); 0: no limit. */
  idleTimeoutMs: number;
  exposeStackTraces: boolean;
  /**
   * Run the tool's code inside its fault scope, so that a fault escaping it fails this
   * call (config `attributeToolFaults`). The scope costs every promise of the process a
   * little (AsyncLocalStorage's hooks); without it faults are still contained and logged.
   */
  faultScope?: boolean;
  /** The call's execute_tool span: the tool's code runs with it active, so its own spans nest under it. */
  span?: ActiveSpan | undefined;
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
  readonly #invocation: ToolInvocation<Invocable>;

  constructor(invocation: ToolInvocation<Invocable>) {
    this.#invocation = invocation;
    this.sessionId = invocation.options.sessionId;
    this.requestId = invocation.options.requestId;
    this.toolName = invocation.tool.name;
  }

  get signal(): AbortSignal {
    return this.#invocation.signal;
  }

  get deadline(): number {
    return this.#invocation.deadline;
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
 *
 * The tool's code runs inside its `toolScope` (faults.ts), so that an exception escaping
 * it is charged to this call; and the invocation knows while the tool's own work is still
 * running after the call ended (a timeout the tool ignored), see `whenSettled`.
 */
export class ToolInvocation<T extends Invocable = Tool> implements FaultScope {
  readonly startedAt = performance.now();
  private controller: AbortController | undefined;
  private abortReason: BridgeError | undefined;
  /** Rejects the wait in progress (see `untilAborted`) when the call is aborted. */
  private rejectWait: ((reason: BridgeError) => void) | undefined;
  private totalTimer: NodeJS.Timeout | undefined;
  /** Epoch ms by which the call must end, set when its timeout starts counting. */
  private deadlineAt = Number.POSITIVE_INFINITY;
  private readonly context: ToolContext;
  /** Promises of the tool's own work not settled yet: its result, a stream step, a stream's return. */
  private outstanding = 0;
  private settledWaiters: (() => void)[] = [];
  /** Set when the engine finished the call: with the type of the error it failed with, if any. */
  private ending: { readonly errorType?: string } | undefined;

  constructor(
    readonly tool: T,
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

  get toolName(): string {
    return this.tool.name;
  }

  get sessionId(): string {
    return this.options.sessionId;
  }

  get requestId(): string {
    return this.options.requestId;
  }

  /** Epoch ms by which the call must end (its tool sees it as `ctx.deadline`); Infinity without a timeout. */
  get deadline(): number {
    return this.deadlineAt;
  }

  /** True while the tool's own work has not settled, whether or not the call has ended. */
  get running(): boolean {
    return this.outstanding > 0;
  }

  /**
   * Calls `callback` once the tool's own work has settled: at once when it has, else when
   * the promise it is still running (one that ignored its abort signal) settles.
   */
  whenSettled(callback: () => void): void {
    if (this.outstanding === 0) callback();
    else this.settledWaiters.push(callback);
  }

  /**
   * The engine finished the call (its answer is decided): successfully, or failed with
   * `errorType`. A fault escaping the tool after this no longer changes the call, and its log
   * says how the call had ended.
   */
  end(errorType: string | undefined): void {
    this.ending ??= errorType === undefined ? {} : { errorType };
  }

  /**
   * An exception or rejection escaped the tool (a timer, a detached promise): the call
   * fails with ToolExecutionError if it still runs. Says what became of the call.
   */
  fault(error: unknown): FaultOutcome {
    const endedWith = this.ending === undefined ? this.abortReason?.type : this.ending.errorType;
    if (this.ending !== undefined && endedWith === undefined) return { kind: "after-success" };
    if (endedWith !== undefined) return { kind: "after-failure", errorType: endedWith };
    const reason = error instanceof Error ? error.message || error.name : String(error);
    const stack: Record<string, string> =
      this.options.exposeStackTraces && error instanceof Error ? { stacktrace: error.stack ?? "" } : {};
    this.abort(
      new BridgeError(
        ErrorType.ToolExecutionError,
        `tool '${this.tool.name}' failed outside its call (an exception from a timer or a rejected ` +
          `promise nobody awaited): ${reason}`,
        {
          details: {
            exception: error instanceof Error ? error.name : typeof error,
            escaped: "true",
            ...stack,
          },
          cause: error,
        },
      ),
    );
    return { kind: "failed" };
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
      const { timeoutMs } = this.options;
      if (timeoutMs > 0) this.deadlineAt = Date.now() + timeoutMs;
      const output = this.inScope(() => this.tool.handler(this.args, this.context));
      // A plain value needs no timer or race: nothing could have interrupted synchronous code.
      return isPromiseLike(output)
        ? await this.untilAborted(this.track(output), timeoutMs > 0 ? timeoutMs : undefined)
        : output;
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
    let finished = false;
    const open = () => {
      const iterable = this.inScope(() => this.tool.handler(this.args, this.context)) as
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
          const from = source;
          // The generator's body runs in the context of whoever calls next(): the call's.
          const output = this.inScope(() => from.next());
          const { idleTimeoutMs } = this.options;
          const step = isPromiseLike(output)
            ? await this.untilAborted(this.track(output), idleTimeoutMs > 0 ? idleTimeoutMs : undefined)
            : output;
          if (step.done) {
            finished = true;
            this.stopTotalTimer();
          }
          return step;
        } catch (error) {
          throw this.normalize(error);
        }
      },
      close: () => {
        this.stopTotalTimer();
        const from = source;
        if (from === undefined || finished) return;
        // Lets the generator run its finally blocks; not awaited, it may be stuck on I/O,
        // but tracked: the tool runs until they are done.
        const closing = this.inScope(() => from.return?.());
        if (closing instanceof Promise) this.track(closing).catch(() => {});
      },
    };
  }

  /** Runs the tool's code `run`, in the call's fault scope when faults are attributed, in its span when traced. */
  private inScope<T>(run: () => T): T {
    const { span } = this.options;
    if (span !== undefined) return span.within(() => this.inFaultScope(run));
    return this.options.faultScope === true ? toolScope.run(this, run) : run();
  }

  private inFaultScope<T>(run: () => T): T {
    return this.options.faultScope === true ? toolScope.run(this, run) : run();
  }

  /** Counts `work` as the tool's own until it settles; returns it. */
  private track<T>(work: PromiseLike<T>): Promise<T> {
    this.outstanding++;
    const settled = Promise.resolve(work);
    const done = () => {
      if (--this.outstanding > 0) return;
      const waiters = this.settledWaiters;
      this.settledWaiters = [];
      for (const waiter of waiters) waiter();
    };
    settled.then(done, done);
    return settled;
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
    if (timeoutMs <= 0) return;
    this.deadlineAt = Date.now() + timeoutMs;
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
