/**
 * The pool's figures: what `state()` reports, and its Prometheus metrics, workers by state
 * (a gauge read at scrape time) and replacements by reason. The metrics live in the host's
 * registry, next to the tool metrics.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { GoneReason, PoolWorker } from "./worker.js";

export interface WorkerCounts {
  /** Ready workers with at least one call or agent run in flight. */
  readonly busy: number;
  /** Ready workers with nothing in flight. */
  readonly idle: number;
  /** Workers spawned and not yet ready. */
  readonly starting: number;
  /** Workers finishing their calls before they stop (recycling, shutdown). */
  readonly draining: number;
}

/** One worker as `state()` reports it. */
export interface WorkerInfo {
  readonly name: string;
  readonly pid: number;
  readonly state: "ready" | "draining";
  /** Calls and agent runs in flight. */
  readonly load: number;
  /** Calls and agent runs sent to it so far. */
  readonly requests: number;
  readonly startedAt: Date;
  readonly rssBytes: number;
  readonly agentsReady: boolean;
}

export interface PoolState extends WorkerCounts {
  readonly size: number;
  /** Workers replaced since the pool started (died, stopped answering or recycled). */
  readonly restarts: number;
  readonly workers: readonly WorkerInfo[];
}

/** A live worker as `state()` reports it. */
export function workerInfo(worker: PoolWorker): WorkerInfo {
  return {
    name: worker.name,
    pid: worker.pid,
    state: worker.state === "draining" ? "draining" : "ready",
    load: worker.load,
    requests: worker.requests,
    startedAt: new Date(worker.startedAt),
    rssBytes: Number(worker.status?.rssBytes ?? 0n),
    agentsReady: worker.agentsReady,
  };
}

export class PoolMetrics {
  private readonly restarts: Counter<"reason">;

  constructor(registry: Registry, counts: () => WorkerCounts) {
    const registers = [registry];
    new Gauge({
      name: "toolbridge_workers",
      help: "Python workers of the pool by state (busy, idle, starting, draining)",
      labelNames: ["state"],
      registers,
      collect() {
        const now = counts();
        for (const state of ["busy", "idle", "starting", "draining"] as const)
          this.set({ state }, now[state]);
      },
    });
    this.restarts = new Counter({
      name: "toolbridge_worker_restarts_total",
      help: "Python workers replaced, by reason (exited, unresponsive, recycled)",
      labelNames: ["reason"],
      registers,
    });
  }

  recordRestart(reason: Exclude<GoneReason, "stopped">): void {
    this.restarts.inc({ reason });
  }
}
