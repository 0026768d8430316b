/**
 * The pool's Prometheus metrics: workers by state (a gauge read at scrape time) and
 * replacements by reason. They live in the host's registry, next to the tool metrics.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { GoneReason } from "./worker.js";

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
