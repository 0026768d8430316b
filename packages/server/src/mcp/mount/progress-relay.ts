/**
 * Progress notifications of a mounted server's calls, handed to their calls as they arrive.
 * The SDK dispatches notifications a microtask late, so a call's last progress notification,
 * arriving in the same read as its result, would reach the SDK's handler after the call had
 * ended and be dropped: chunks of a streaming tool would go missing. Reading them off the
 * transport first (the connection taps its messages) keeps them in order, ahead of the result.
 */
export interface Progress {
  readonly progress: number;
  readonly total?: number;
  readonly message?: string;
}

export type ProgressSink = (progress: Progress) => void;

export class ProgressRelay {
  private next = 0;
  private readonly sinks = new Map<string, ProgressSink>();

  /** A progress token for one call whose notifications go to `sink` until `close` is called. */
  open(sink: ProgressSink): { readonly token: string; close(): void } {
    this.next = (this.next + 1) % Number.MAX_SAFE_INTEGER;
    const token = `toolbridge-${this.next}`;
    this.sinks.set(token, sink);
    return { token, close: () => this.sinks.delete(token) };
  }

  /** Hands a progress notification to its call; any other message is ignored. */
  deliver(message: unknown): void {
    if (this.sinks.size === 0 || typeof message !== "object" || message === null) return;
    const { method, params } = message as { method?: unknown; params?: Record<string, unknown> };
    if (method !== "notifications/progress" || params === undefined) return;
    const sink = this.sinks.get(String(params.progressToken));
    if (sink === undefined || typeof params.progress !== "number") return;
    const progress: { progress: number; total?: number; message?: string } = { progress: params.progress };
    if (typeof params.total === "number") progress.total = params.total;
    if (typeof params.message === "string") progress.message = params.message;
    sink(progress);
  }
}
