import type { BridgeError } from "@toolbridge/core";

/** One open Calls stream (calls.ts's CallMux), as a shutdown sees it. */
export interface OpenCallStream {
  /** Settles once the stream is over and none of its calls runs. */
  readonly finished: Promise<void>;
  /** Shutdown began: refuse new calls and end once the calls running are done. */
  drain(): void;
  /** Fail every running call with `reason`. */
  abort(reason: BridgeError): void;
}

/**
 * The open Calls streams, so that a shutdown can end the idle ones at once (an idle
 * stream would otherwise hold up the drain for the whole grace period) and fail the
 * calls still running when the grace period is over, each with an error of its own.
 */
export class OpenCallStreams {
  private readonly open = new Set<OpenCallStream>();

  get size(): number {
    return this.open.size;
  }

  /** Keeps `stream` until it is finished. */
  add(stream: OpenCallStream): void {
    this.open.add(stream);
    void stream.finished.then(() => this.open.delete(stream));
  }

  /** Shutdown began: each stream refuses new calls and ends once its calls are done. */
  drain(): void {
    for (const stream of this.open) stream.drain();
  }

  /**
   * Fails every running call with `reason`; resolves once every stream has answered its
   * calls and ended, or after `waitMs`, whichever comes first.
   */
  async abort(reason: BridgeError, waitMs: number): Promise<void> {
    if (this.open.size === 0) return;
    for (const stream of this.open) stream.abort(reason);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.open].map((stream) => stream.finished)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
