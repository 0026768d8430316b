/**
 * One live worker of a pool: its process, a gRPC client over its socket, the heartbeat
 * that watches it, and the calls in flight on it. When the worker dies or stops answering,
 * every call in flight fails at once with Unavailable (retriable) instead of hanging.
 */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, pbWorker } from "@toolbridge/core";
import type { ResolvedPoolOptions } from "./options.js";
import { describeExit, type ExitInfo, type WorkerProcess } from "./process.js";

/** ready: takes calls; draining: finishes its calls, takes none (recycling, stop); gone: exited. */
export type WorkerState = "ready" | "draining" | "gone";

/** Why a worker went away, as the restarts counter labels it. */
export type GoneReason = "exited" | "unresponsive" | "recycled" | "stopped";

interface InFlight {
  fail(error: BridgeError): void;
}

export interface WorkerEvents {
  /** The worker's process exited; the pool replaces it unless it is stopping. */
  gone(worker: PoolWorker, reason: GoneReason, exit: ExitInfo): void;
  /** A heartbeat answer arrived, or the worker's load changed. */
  changed(worker: PoolWorker): void;
}

/** The reason an aborted call fails with: the signal's own BridgeError, else Cancelled. */
export function abortError(signal: AbortSignal | undefined): BridgeError {
  const reason: unknown = signal?.reason;
  if (reason instanceof BridgeError) return reason;
  return new BridgeError(ErrorType.Cancelled, "the call was cancelled by its caller");
}

export class PoolWorker {
  readonly startedAt = Date.now();
  state: WorkerState = "ready";
  /** Tool calls and agent runs this host sent to the worker. */
  requests = 0;
  /** The worker's last heartbeat answer. */
  status: pbWorker.WorkerStatus | undefined;
  readonly client: pbWorker.ToolBridgeWorkerClient;
  private readonly inFlight = new Set<InFlight>();
  private heartbeat: grpc.ClientDuplexStream<pbWorker.WorkerPing, pbWorker.WorkerStatus> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastSeen = Date.now();
  private lostAs: { reason: GoneReason; error: BridgeError } | undefined;
  private stopping = false;

  constructor(
    readonly name: string,
    readonly process: WorkerProcess,
    private readonly options: ResolvedPoolOptions,
    private readonly events: WorkerEvents,
  ) {
    this.client = new pbWorker.ToolBridgeWorkerClient(process.target, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": options.maxMessageBytes,
      "grpc.max_send_message_length": options.maxMessageBytes,
    });
    void process.exited.then((exit) => this.exited(exit));
    this.startHeartbeat();
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Calls and runs in flight on this worker. */
  get load(): number {
    return this.inFlight.size;
  }

  /** Whether the worker's agent runtime (DSPy) is imported. */
  get agentsReady(): boolean {
    return this.status?.agentsReady ?? false;
  }

  /**
   * A unary call on the worker, failed with Unavailable if the worker goes away meanwhile.
   * Aborting `signal` cancels it, which the worker sees as a cancellation; the call's timeout
   * is its caller's (the call engine's timer aborts the signal), not this layer's.
   */
  unary<Res>(
    what: string,
    start: (callback: (error: grpc.ServiceError | null, response: Res) => void) => grpc.ClientUnaryCall,
    signal: AbortSignal | undefined,
  ): Promise<Res> {
    this.requests++;
    return new Promise<Res>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        this.inFlight.delete(entry);
        signal?.removeEventListener("abort", onAbort);
        this.events.changed(this);
      };
      const entry: InFlight = {
        fail: (error) => {
          if (settled) return;
          finish();
          call.cancel();
          reject(error);
        },
      };
      const onAbort = () => entry.fail(abortError(signal));
      const call = start((error, response) => {
        if (settled) return;
        finish();
        if (error === null) resolve(response);
        else reject(this.transportError(what, error));
      });
      this.inFlight.add(entry);
      this.events.changed(this);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** A server stream on the worker; ending the iteration early cancels it (the worker sees that). */
  async *stream<T>(
    what: string,
    open: () => grpc.ClientReadableStream<T>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<T, void, undefined> {
    this.requests++;
    const call = open();
    let failure: BridgeError | undefined;
    const entry: InFlight = {
      fail: (error) => {
        failure ??= error;
        call.cancel();
      },
    };
    const onAbort = () => entry.fail(abortError(signal));
    this.inFlight.add(entry);
    this.events.changed(this);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const message of call as AsyncIterable<T>) {
        if (failure !== undefined) throw failure;
        yield message;
      }
      if (failure !== undefined) throw failure;
    } catch (error) {
      throw failure ?? (error instanceof BridgeError ? error : this.transportError(what, error));
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.inFlight.delete(entry);
      call.cancel();
      this.events.changed(this);
    }
  }

  /**
   * Takes the worker out of service because it stopped answering: kills its process group
   * and fails its calls in flight. The exit that follows makes the pool replace it.
   */
  lose(reason: GoneReason, message: string): void {
    if (this.lostAs !== undefined || this.state === "gone") return;
    const error = new BridgeError(
      ErrorType.Unavailable,
      `Python worker ${this.name} (pid ${this.pid}) ${message}; the pool replaces it: retry the call`,
      {
        details: { worker: this.name, pid: String(this.pid), reason: `worker_${reason}`, retriable: "true" },
      },
    );
    this.lostAs = { reason, error };
    this.state = "gone";
    this.stopHeartbeat();
    this.process.killGroup("SIGKILL");
    this.failAll(error);
  }

  /**
   * Stops the worker gracefully: no new calls, calls in flight get `graceMs`, then SIGTERM to
   * its group and, if it is still there after another `graceMs`, SIGKILL. Resolves once it exited.
   */
  async close(graceMs: number): Promise<void> {
    if (this.state !== "gone") this.state = "draining";
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size > 0 && Date.now() < deadline && this.state !== "gone") {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.stopHeartbeat();
    this.process.killGroup("SIGTERM");
    const killer = setTimeout(() => this.process.killGroup("SIGKILL"), Math.max(graceMs, 100));
    await this.process.exited;
    clearTimeout(killer);
  }

  private startHeartbeat(): void {
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.options;
    const stream = this.client.heartbeat();
    this.heartbeat = stream;
    let sequence = 0n;
    const ping = () => {
      sequence++;
      stream.write({ sequence, timeoutMs: heartbeatTimeoutMs });
    };
    stream.on("data", (status: pbWorker.WorkerStatus) => {
      this.lastSeen = Date.now();
      this.status = status;
      this.events.changed(this);
    });
    const ended = () => {
      if (!this.stopping) this.lose("exited", "closed its heartbeat stream");
    };
    stream.on("error", ended);
    stream.on("end", ended);
    ping();
    this.heartbeatTimer = setInterval(() => {
      const silentMs = Date.now() - this.lastSeen;
      if (silentMs > heartbeatTimeoutMs) {
        this.lose("unresponsive", `answered no heartbeat for ${silentMs} ms`);
      } else {
        ping();
      }
    }, heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    const stream = this.heartbeat;
    this.heartbeat = undefined;
    if (stream !== undefined) {
      stream.removeAllListeners("error");
      stream.on("error", () => {});
      stream.cancel();
    }
  }

  private exited(exit: ExitInfo): void {
    const reason: GoneReason = this.lostAs?.reason ?? (this.stopping ? "stopped" : "exited");
    this.state = "gone";
    this.stopHeartbeat();
    this.failAll(
      this.lostAs?.error ??
        new BridgeError(
          ErrorType.Unavailable,
          `Python worker ${this.name} (pid ${this.pid}) ${describeExit(exit)} while the call was in flight; ` +
            "the pool replaces it: retry the call",
          {
            details: { worker: this.name, pid: String(this.pid), reason: "worker_exited", retriable: "true" },
          },
        ),
    );
    // Kills what the worker's tools left behind in its group.
    this.process.killGroup("SIGKILL");
    this.client.close();
    this.events.gone(this, reason, exit);
  }

  private failAll(error: BridgeError): void {
    for (const entry of [...this.inFlight]) entry.fail(error);
  }

  private transportError(what: string, error: unknown): BridgeError {
    if (this.lostAs !== undefined) return this.lostAs.error;
    const e = error as Partial<grpc.ServiceError>;
    const code = typeof e.code === "number" ? e.code : grpc.status.UNKNOWN;
    const name = grpc.status[code] ?? String(code);
    if (code === grpc.status.DEADLINE_EXCEEDED) {
      return new BridgeError(
        ErrorType.Timeout,
        `'${what}' on Python worker ${this.name} passed its deadline`,
        {
          details: { worker: this.name },
        },
      );
    }
    return new BridgeError(
      ErrorType.Unavailable,
      `Python worker ${this.name} (pid ${this.pid}) failed '${what}' in transport (${name}: ${e.details ?? e.message}); ` +
        "if it died the pool replaces it: retry the call",
      {
        details: {
          worker: this.name,
          pid: String(this.pid),
          reason: "worker_transport",
          grpc_code: name,
          retriable: "true",
        },
        cause: error,
      },
    );
  }
}
