/**
 * The ToolBridge calls in progress, so that a graceful shutdown knows when the last one
 * has finished and the server can close while health RPCs were still being answered.
 */
export class InFlightCalls {
  private count = 0;
  private idle: (() => void)[] = [];

  get size(): number {
    return this.count;
  }

  /** Counts `work` as in flight until it settles; returns it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.count++;
    return work.finally(() => {
      this.count--;
      if (this.count === 0) {
        const waiting = this.idle;
        this.idle = [];
        for (const resolve of waiting) resolve();
      }
    });
  }

  /**
   * Resolves true once no call is in flight, or false when `ms` pass or `signal` fires
   * first (the calls then still running are the caller's to cancel).
   */
  whenIdle(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const settle = (idle: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.idle = this.idle.filter((waiter) => waiter !== onIdle);
        resolve(idle);
      };
      const onIdle = () => settle(true);
      const onAbort = () => settle(false);
      const timer = setTimeout(() => settle(false), ms);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.idle.push(onIdle);
    });
  }
}
