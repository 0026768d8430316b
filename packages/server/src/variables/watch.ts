/**
 * One watcher of a session's variables: a queue between the store's change events
 * (pushed synchronously, in commit order) and a consumer that pulls at its own pace
 * (the WatchSessionVariables stream, or an in-process async iterator).
 *
 * The queue is bounded in bytes. A consumer that falls that far behind does not make
 * the host buffer without limit, and does not silently miss updates either: its watch
 * ends with a ResourceExhausted error, and it can watch again with initial values. The
 * queues of all the host's watches are bounded together too (WatchBudget).
 */
import { BridgeError, ErrorType, type pb } from "@toolbridge/core";
import type { SessionEndReason } from "../sessions/session-table.js";

export type WatchEvent =
  /**
   * `sequence`: the change's position in the session's sequence of changes; for an
   * initial value, the sequence of the snapshot it was read at.
   */
  | { readonly kind: "initial" | "set"; readonly variable: pb.Variable; readonly sequence: bigint }
  | { readonly kind: "deleted"; readonly name: string; readonly version: bigint; readonly sequence: bigint }
  /** Terminal: nothing follows. */
  | { readonly kind: "session_ended"; readonly reason: SessionEndReason }
  /** Terminal: nothing follows. */
  | { readonly kind: "error"; readonly error: BridgeError };

interface Queued {
  readonly event: WatchEvent;
  readonly size: number;
  /** Sequence of the change; undefined for events that are not changes (always delivered). */
  readonly sequence: bigint | undefined;
}

/**
 * The bytes all of a host's watches hold queued (maxTotalWatchBufferBytes). Each watch is
 * bounded by watchBufferBytes, but a client may open many; past the total, the watch
 * holding the most is ended as one that fell too far behind is, whoever pushed last.
 */
export class WatchBudget {
  private total = 0;
  private readonly holding = new Set<VariableWatch>();

  /** 0: no total. */
  constructor(readonly limitBytes: number) {}

  /** Bytes queued by every watch. */
  get bytes(): number {
    return this.total;
  }

  /** Counts `delta` more bytes queued by `watch` (which now holds `held`). */
  adjust(watch: VariableWatch, delta: number, held: number): void {
    this.total += delta;
    if (held > 0) this.holding.add(watch);
    else this.holding.delete(watch);
  }

  /** Ends the watches holding the most until the total is within the limit again. */
  relieve(): void {
    while (this.limitBytes > 0 && this.total > this.limitBytes) {
      let most: VariableWatch | undefined;
      for (const watch of this.holding) if (most === undefined || watch.queued > most.queued) most = watch;
      if (most === undefined) return;
      const held = this.total;
      most.fail(
        new BridgeError(
          ErrorType.ResourceExhausted,
          `the host's variable watches held ${held} bytes of updates not yet read, over its limit of ` +
            `${this.limitBytes} (maxTotalWatchBufferBytes); this watch of session '${most.sessionId}' held ` +
            "the most and was ended so that no update is lost silently; read updates faster, or watch " +
            "again with initial values to resynchronize",
          { details: { quota: "maxTotalWatchBufferBytes", limit: String(this.limitBytes) } },
        ),
      );
    }
  }
}

export class VariableWatch {
  private queue: (Queued | undefined)[] = [];
  private head = 0;
  private bytes = 0;
  /** Set while initial values are being read: changes wait here to be reconciled with them. */
  private early: Queued[] | undefined;
  private waiter: ((event: WatchEvent | undefined) => void) | undefined;
  /** A terminal event was queued: nothing more is accepted. */
  private finished = false;
  private closed = false;
  /**
   * Settles once the session was found and the initial values (if asked for) are
   * queued; rejects with the error the watch failed with. Set by VariableService.
   */
  started: Promise<void> = Promise.resolve();

  constructor(
    readonly sessionId: string,
    private readonly names: ReadonlySet<string> | undefined,
    private readonly limitBytes: number,
    private readonly onClose: (watch: VariableWatch) => void,
    /** Events wait for begin() (initial values or resumed changes come first). */
    startsWithBegin: boolean,
    private readonly budget: WatchBudget = new WatchBudget(0),
  ) {
    if (startsWithBegin) this.early = [];
  }

  /** Bytes of updates this watch holds that its consumer has not taken yet. */
  get queued(): number {
    return this.bytes;
  }

  /** True when this watch wants updates of `name`. */
  accepts(name: string): boolean {
    return this.names === undefined || this.names.has(name);
  }

  /** Queues a committed change (or a terminal event, with `sequence` undefined). */
  push(event: WatchEvent, size: number, sequence?: bigint): void {
    if (this.finished || this.closed) return;
    const terminal = event.kind === "session_ended" || event.kind === "error";
    const item = { event, size, sequence };
    this.account(size);
    if (this.bytes > this.limitBytes && !terminal) {
      this.overflow();
      return;
    }
    if (!terminal && this.budget.limitBytes > 0 && this.budget.bytes > this.budget.limitBytes) {
      this.budget.relieve();
      if (this.finished) return;
    }
    if (terminal) this.finished = true;
    if (this.early !== undefined) {
      this.early.push(item);
      return;
    }
    this.deliver(item);
  }

  /**
   * Puts `first` (initial values, or the changes a resumed watch missed) first, followed
   * by the changes that arrived meanwhile and are newer than `sequence`, the position
   * `first` brings the watcher to; older ones are already reflected in it.
   */
  begin(first: readonly WatchEvent[], sequence: bigint, sizeOf: (event: WatchEvent) => number): void {
    const early = this.early;
    if (early === undefined) return;
    this.early = undefined;
    if (this.closed) return;
    const pending = [
      ...first.map((event): Queued => ({ event, size: sizeOf(event), sequence: undefined })),
      ...early.filter((item) => item.sequence === undefined || item.sequence > sequence),
    ];
    this.account(-this.bytes);
    for (const item of pending) {
      this.account(item.size);
      const terminal = item.event.kind === "session_ended" || item.event.kind === "error";
      if (this.bytes > this.limitBytes && !terminal) {
        this.overflow();
        return;
      }
      this.deliver(item);
    }
    this.budget.relieve();
  }

  /** True once close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** The next event; undefined once the watch is closed or its terminal event was taken. */
  next(): Promise<WatchEvent | undefined> {
    const item = this.queue[this.head];
    if (item !== undefined) {
      this.queue[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.account(-item.size);
      return Promise.resolve(item.event);
    }
    if (this.closed || (this.finished && this.early === undefined)) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Stops the watch: no more events, and a pending next() resolves with undefined. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.early = undefined;
    this.account(-this.bytes);
    this.onClose(this);
    this.wake(undefined);
  }

  private deliver(item: Queued): void {
    if (this.waiter !== undefined && this.head === this.queue.length) {
      // Handed over at once, so it never counted against the buffer.
      this.account(-item.size);
      this.wake(item.event);
      return;
    }
    this.queue.push(item);
  }

  /** Ends the watch with `error` in place of every update it holds (the host's total is reached). */
  fail(error: BridgeError): void {
    this.queue = [];
    this.head = 0;
    this.early = undefined;
    this.account(-this.bytes);
    this.finished = true;
    this.deliver({ event: { kind: "error", error }, size: 0, sequence: undefined });
  }

  private overflow(): void {
    this.fail(
      new BridgeError(
        ErrorType.ResourceExhausted,
        `the watch of session '${this.sessionId}' fell more than ${this.limitBytes} bytes of updates ` +
          "behind (watchBufferBytes) and was ended so that no update is lost silently; read updates " +
          "faster, or watch again with initial values to resynchronize",
        { details: { limit: String(this.limitBytes) } },
      ),
    );
  }

  private account(delta: number): void {
    this.bytes += delta;
    this.budget.adjust(this, delta, this.bytes);
  }

  private wake(event: WatchEvent | undefined): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(event);
  }
}
