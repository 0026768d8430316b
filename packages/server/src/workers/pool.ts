/**
 * A supervised pool of warm Python workers owned by the host. It starts them in parallel
 * (bounded), watches each through a heartbeat, replaces one that dies or stops answering,
 * recycles them by request count, age or memory, and on stop leaves no process behind.
 *
 *   const pool = new WorkerPool({ size: 2, modules: ["my_tools"], python: ".venv/bin/python" });
 *   await pool.start();
 *   const summary = await pool.call("summarize", { text });
 *   for await (const chunk of pool.streamCall("count", { n: 3 })) console.log(chunk);
 *   await pool.stop();
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  BridgeError,
  ErrorType,
  encodeArgs,
  encodeKwargs,
  type NativeValue,
  type pb,
  type pbValues,
  type pbWorker,
} from "@toolbridge/core";
import { Registry } from "prom-client";
import { makePrivateDir, removeStaleDirs } from "../private-dir.js";
import type { TracingSlot } from "../tracing/contract.js";
import type { PythonAgentResult, WorkerAgentOptions } from "./agent-run.js";
import { runAgentOn } from "./agents.js";
import { callOn, type EncodedCallOptions, finite, streamOn } from "./calls.js";
import { invokeCall, invokeStream, type PoolCallOptions } from "./direct-calls.js";
import { PoolMetrics, type PoolState, type WorkerCounts, type WorkerInfo, workerInfo } from "./metrics.js";
import { type ResolvedPoolOptions, resolvePoolOptions, type WorkerPoolOptions } from "./options.js";
import { describeExit, type ExitInfo, spawnWorker } from "./process.js";
import { type GoneReason, PoolWorker } from "./worker.js";

type Lifecycle = "new" | "starting" | "running" | "stopping" | "stopped";

// Keeps the session → worker map bounded when sessions come and go.
const MAX_AFFINITY_KEYS = 10_000;
// A worker that dies sooner than this after starting counts as a failed start (backoff).
const MIN_HEALTHY_LIFETIME_MS = 5000;
const MAX_RESTART_DELAY_MS = 10_000;

export class WorkerPool {
  readonly options: ResolvedPoolOptions;
  /** Where the pool's metrics live: the host's registry when the host owns the pool. */
  readonly metricsRegistry: Registry;
  private readonly metrics: PoolMetrics;
  private lifecycle: Lifecycle = "new";
  private readonly workers = new Map<string, PoolWorker>();
  private starting = 0;
  private startSlots: number;
  private readonly startQueue: (() => void)[] = [];
  private nextId = 0;
  private socketDir: string | undefined;
  /** Whether the pool made its socket directory (and so removes it), rather than its host. */
  private ownsSocketDir = false;
  private specs: readonly pb.ToolSpec[] = [];
  /** The tools' own timeouts (`timeout_ms`), which shorten the direct calls' timeouts. */
  private readonly ownTimeouts = new Map<string, number>();
  private readonly waiters = new Set<() => void>();
  private readonly affinity = new Map<string, PoolWorker>();
  private roundRobin = 0;
  /** The workers taking calls, rebuilt when one starts, drains or goes. */
  private readyCache: PoolWorker[] | undefined;
  private restarts = 0;
  private failedStarts = 0;
  private readonly listeners = new Set<() => void>();
  private readonly killAllOnExit = () => this.killAll();
  private hostAddress: string | undefined;

  /** The owning host's tracing: calls carry its context to the workers, which trace too while it is on. */
  private readonly tracing: TracingSlot | undefined;

  constructor(options: WorkerPoolOptions & { metricsRegistry?: Registry; tracing?: TracingSlot }) {
    this.options = resolvePoolOptions(options);
    this.tracing = options.tracing;
    this.hostAddress = this.options.hostAddress;
    this.startSlots = this.options.startConcurrency;
    this.metricsRegistry = options.metricsRegistry ?? new Registry();
    this.metrics = new PoolMetrics(this.metricsRegistry, () => this.counts());
  }

  /** Number of workers the pool keeps running. */
  get size(): number {
    return this.options.size;
  }

  /** The Python tools the workers serve (empty before `start`). */
  get toolSpecs(): readonly pb.ToolSpec[] {
    return this.specs;
  }

  /**
   * For the host that owns the pool, before it starts: the workers' sockets go in `directory`
   * (the host's private one, which the host removes) and their agent runs attach to
   * `hostAddress` (the host's socket there), fixed for their whole life.
   */
  attachToHost(directory: string, hostAddress: string): void {
    if (this.lifecycle !== "new") {
      throw new BridgeError(
        ErrorType.ValidationError,
        "a worker pool is attached to its host before it starts",
      );
    }
    this.socketDir = directory;
    this.hostAddress = hostAddress;
  }

  /** Called whenever a worker starts, finishes a call, answers a heartbeat or goes away. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts every worker (at most `startConcurrency` at once) and reads their tools; resolves
   * once all are ready. Rejects with the first worker's failure (bad module, no Python), after
   * stopping the others. A pool of size 0 starts nothing.
   */
  async start(): Promise<{ readonly startupMs: number; readonly tools: readonly pb.ToolSpec[] }> {
    if (this.lifecycle !== "new") {
      throw new BridgeError(ErrorType.ValidationError, "the worker pool was already started");
    }
    const started = performance.now();
    this.lifecycle = "starting";
    if (this.options.size === 0) {
      this.lifecycle = "running";
      return { startupMs: 0, tools: [] };
    }
    if (this.socketDir === undefined) {
      await removeStaleDirs();
      this.socketDir = makePrivateDir("toolbridge-workers");
      this.ownsSocketDir = true;
    }
    process.on("exit", this.killAllOnExit);
    const spawned = await Promise.allSettled(
      Array.from({ length: this.options.size }, () => this.spawnOne()),
    );
    const failed = spawned.find((result) => result.status === "rejected");
    if (failed !== undefined) {
      await this.stop({ graceMs: 0 });
      throw failed.reason;
    }
    const first = [...this.workers.values()][0] as PoolWorker;
    const described = await first.unary<pbWorker.DescribeToolsResponse>(
      "DescribeTools",
      (callback) => first.client.describeTools({}, callback),
      undefined,
    );
    this.specs = described.tools;
    for (const spec of this.specs) this.ownTimeouts.set(spec.name, spec.limits?.timeoutMs ?? 0);
    this.lifecycle = "running";
    this.changed();
    const startupMs = performance.now() - started;
    this.options.logger?.info(
      { workers: this.workers.size, startupMs: Math.round(startupMs), tools: this.specs.map((t) => t.name) },
      "Python workers ready",
    );
    return { startupMs, tools: this.specs };
  }

  /**
   * Stops every worker: calls in flight get `graceMs` (default `stopGraceMs`), then each
   * worker's process group gets SIGTERM and, if still there, SIGKILL. Resolves once every
   * worker process has exited; calls made afterwards fail with Unavailable.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.lifecycle === "stopped" || this.lifecycle === "stopping") return;
    this.lifecycle = "stopping";
    for (const wake of this.waiters) wake();
    const graceMs = options.graceMs ?? this.options.stopGraceMs;
    while (this.starting > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await Promise.all([...this.workers.values()].map((worker) => worker.close(graceMs)));
    process.off("exit", this.killAllOnExit);
    if (this.ownsSocketDir && this.socketDir !== undefined) {
      rmSync(this.socketDir, { recursive: true, force: true });
    }
    this.lifecycle = "stopped";
    this.changed();
  }

  /**
   * Calls a Python tool on a free worker and resolves with its decoded result. Its timeout
   * (`timeoutMs`, the tool's own) is kept by the call engine's invocation, as through the host.
   */
  async call(
    name: string,
    kwargs: Readonly<Record<string, unknown>> = {},
    options: PoolCallOptions = {},
  ): Promise<NativeValue> {
    const args = encodeArgs(options.args ?? []);
    const encoded = encodeKwargs(kwargs);
    return invokeCall(name, this.timeoutOf(name, options), options, (call) =>
      this.callEncoded(name, args, encoded, call),
    );
  }

  /**
   * Streams a Python tool's chunks (a generator tool; a plain one gives one chunk). Leaving
   * the loop early or aborting `signal` cancels the call, and the Python generator is closed.
   */
  async *streamCall(
    name: string,
    kwargs: Readonly<Record<string, unknown>> = {},
    options: PoolCallOptions = {},
  ): AsyncGenerator<NativeValue, void, undefined> {
    const args = encodeArgs(options.args ?? []);
    const encoded = encodeKwargs(kwargs);
    yield* invokeStream(name, this.timeoutOf(name, options), options, (call) =>
      this.streamEncoded(name, args, encoded, call),
    );
  }

  /**
   * Calls a Python tool with encoded arguments and resolves with its result exactly as the
   * worker encoded it (the host's tools pass it on unchanged). No timer of its own: the caller
   * ends the call by aborting `signal`, and the worker hears its `deadline` as a backstop.
   */
  async callEncoded(
    name: string,
    args: readonly pbValues.Value[],
    kwargs: Readonly<Record<string, pbValues.Value>>,
    options: EncodedCallOptions = {},
  ): Promise<pbValues.Value> {
    const worker = await this.acquire(options, finite(options.deadline));
    return callOn(worker, name, args, kwargs, options, this.tracing?.current);
  }

  /** `callEncoded` for a stream: the tool's chunks as the worker encoded them. */
  async *streamEncoded(
    name: string,
    args: readonly pbValues.Value[],
    kwargs: Readonly<Record<string, pbValues.Value>>,
    options: EncodedCallOptions = {},
  ): AsyncGenerator<pbValues.Value, void, undefined> {
    const worker = await this.acquire(options, finite(options.deadline));
    yield* streamOn(worker, name, args, kwargs, options, this.tracing?.current);
  }

  /**
   * Runs a DSPy ReAct agent on a warm worker (preferably an idle one with DSPy imported),
   * attached to a session of the host; the run is recorded in the session as a spawned
   * `python -m toolbridge.agent` records it. Resolves with the run's result, also when the
   * run failed (`status: "failed"`); rejects with a BridgeError when no run happened.
   */
  async runAgent(options: WorkerAgentOptions): Promise<PythonAgentResult> {
    if (this.hostAddress === undefined) {
      throw new BridgeError(
        ErrorType.ValidationError,
        "this pool's workers run no agents: they attach agent runs only to the host they were started " +
          "for, and this pool has none; use a host's pool (host.workers) or create it with hostAddress",
        { details: { field: "hostAddress" } },
      );
    }
    const worker = await this.acquire({ signal: options.signal }, undefined, true);
    return runAgentOn(worker, options, this.tracing?.current?.activeCarrier());
  }

  /** Workers taking calls now. */
  get readyCount(): number {
    let ready = 0;
    for (const worker of this.workers.values()) if (worker.state === "ready") ready++;
    return ready;
  }

  /** How many workers are in each state, and each worker's figures. */
  state(): PoolState {
    const workers: WorkerInfo[] = [];
    for (const worker of this.workers.values()) if (worker.state !== "gone") workers.push(workerInfo(worker));
    return { size: this.options.size, restarts: this.restarts, workers, ...this.counts() };
  }

  /** Resolves once `n` workers are ready (e.g. after a replacement); rejects when the pool stops first. */
  async waitForReady(n = this.options.size, signal?: AbortSignal): Promise<void> {
    while (this.counts().idle + this.counts().busy < n) {
      if (this.lifecycle === "stopping" || this.lifecycle === "stopped") throw this.notRunning();
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
        setTimeout(wake, 100).unref();
      });
    }
  }

  private counts(): WorkerCounts {
    let busy = 0;
    let idle = 0;
    let draining = 0;
    for (const worker of this.workers.values()) {
      if (worker.state === "draining") draining++;
      else if (worker.state === "ready") worker.load > 0 ? busy++ : idle++;
    }
    return { busy, idle, starting: this.starting, draining };
  }

  private notRunning(): BridgeError {
    const why =
      this.options.size === 0
        ? "the host has no Python workers: start it with --workers N --worker-module my_tools"
        : `the worker pool is ${this.lifecycle === "new" ? "not started" : "stopped"}`;
    return new BridgeError(ErrorType.Unavailable, why, { details: { reason: "no_workers" } });
  }

  /** A ready worker for a call: the affinity key's, else the least loaded (ties in turn). */
  private pick(affinity: string | undefined, preferWarmAgents: boolean): PoolWorker | undefined {
    if (affinity !== undefined) {
      const pinned = this.affinity.get(affinity);
      if (pinned?.state === "ready") return pinned;
    }
    this.readyCache ??= [...this.workers.values()].filter((worker) => worker.state === "ready");
    const ready = this.readyCache;
    let best: PoolWorker | undefined;
    const offset = this.roundRobin++;
    for (let i = 0; i < ready.length; i++) {
      const worker = ready[(offset + i) % ready.length] as PoolWorker;
      if (worker.state !== "ready") continue;
      if (best === undefined || score(worker) < score(best)) best = worker;
    }
    if (best !== undefined && affinity !== undefined) {
      if (this.affinity.size >= MAX_AFFINITY_KEYS)
        this.affinity.delete(this.affinity.keys().next().value as string);
      this.affinity.set(affinity, best);
    }
    return best;

    function score(worker: PoolWorker): number {
      // An agent run prefers a worker with DSPy already imported, as if it carried one call less.
      return worker.load * 2 + (preferWarmAgents && !worker.agentsReady ? 1 : 0);
    }
  }

  /** A ready worker, waiting for one (a replacement, the start) until `deadline` or abort. */
  private async acquire(
    options: Pick<PoolCallOptions, "affinity" | "signal">,
    deadline: number | undefined,
    forAgent = false,
  ): Promise<PoolWorker> {
    for (;;) {
      if (this.lifecycle === "stopping" || this.lifecycle === "stopped" || this.options.size === 0) {
        throw this.notRunning();
      }
      const worker = this.lifecycle === "new" ? undefined : this.pick(options.affinity, forAgent);
      if (worker !== undefined) return worker;
      if (this.lifecycle === "new") throw this.notRunning();
      if (options.signal?.aborted) throw options.signal.reason;
      const remaining = deadline === undefined ? 1000 : deadline - Date.now();
      if (remaining <= 0) {
        throw new BridgeError(ErrorType.Timeout, "no Python worker became ready before the call's timeout", {
          details: { reason: "no_ready_worker" },
        });
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          options.signal?.removeEventListener("abort", wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(remaining, 1000));
        this.waiters.add(wake);
        options.signal?.addEventListener("abort", wake, { once: true });
      });
    }
  }

  private async spawnOne(): Promise<PoolWorker> {
    const name = `w${++this.nextId}`;
    this.starting++;
    this.changed();
    await this.startSlot();
    try {
      if (this.lifecycle === "stopping" || this.lifecycle === "stopped") throw this.notRunning();
      const socket = join(this.socketDir as string, `${name}.sock`);
      // A worker of a host that traces records spans too (python -m toolbridge.worker reads it).
      const options =
        this.tracing?.current === undefined
          ? this.options
          : { ...this.options, env: { ...this.options.env, TOOLBRIDGE_TRACING: "true" } };
      const process = await spawnWorker(options, name, socket, this.hostAddress);
      const worker = new PoolWorker(name, process, this.options, {
        gone: (gone, reason, exit) => this.gone(gone, reason, exit),
        changed: (changed) => this.workerChanged(changed),
      });
      this.workers.set(name, worker);
      this.options.logger?.debug({ worker: name, pid: worker.pid }, "Python worker ready");
      return worker;
    } finally {
      this.starting--;
      this.releaseSlot();
      this.changed();
    }
  }

  private startSlot(): Promise<void> {
    if (this.startSlots > 0) {
      this.startSlots--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.startQueue.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.startQueue.shift();
    if (next !== undefined) next();
    else this.startSlots++;
  }

  private gone(worker: PoolWorker, reason: GoneReason, exit: ExitInfo): void {
    this.workers.delete(worker.name);
    for (const [key, pinned] of this.affinity) if (pinned === worker) this.affinity.delete(key);
    this.changed();
    if (reason === "stopped" || this.lifecycle !== "running") return;
    this.restarts++;
    this.metrics.recordRestart(reason === "recycled" ? "recycled" : reason);
    const lived = Date.now() - worker.startedAt;
    this.options.logger?.warn(
      {
        worker: worker.name,
        pid: worker.pid,
        reason,
        exit: describeExit(exit),
        stderr: worker.process.stderrTail(),
      },
      "Python worker lost; starting a replacement",
    );
    this.failedStarts = lived < MIN_HEALTHY_LIFETIME_MS ? this.failedStarts + 1 : 0;
    this.replace();
  }

  /** Starts a replacement; after quick deaths in a row, waits longer each time (up to 10 s). */
  private replace(): void {
    const delay = this.failedStarts <= 1 ? 0 : Math.min(100 * 2 ** this.failedStarts, MAX_RESTART_DELAY_MS);
    const timer = setTimeout(() => {
      if (this.lifecycle !== "running") return;
      this.spawnOne().catch((error: unknown) => {
        if (this.lifecycle !== "running") return;
        this.failedStarts++;
        this.options.logger?.error({ err: error }, "could not start a replacement Python worker; retrying");
        this.replace();
      });
    }, delay);
    timer.unref();
  }

  private workerChanged(worker: PoolWorker): void {
    this.recycleIfDue(worker);
    // A finished call changes loads only: the ready list stays, listeners still hear of it.
    for (const wake of [...this.waiters]) wake();
    for (const listener of this.listeners) listener();
  }

  /** Retires a worker past its request count, age or memory: a replacement starts, it drains and stops. */
  private recycleIfDue(worker: PoolWorker): void {
    if (worker.state !== "ready" || this.lifecycle !== "running") return;
    const { maxRequests, maxAgeMs, maxMemoryBytes } = this.options;
    const rss = Number(worker.status?.rssBytes ?? 0n);
    let why: string | undefined;
    if (maxRequests > 0 && worker.requests >= maxRequests) why = `served ${worker.requests} requests`;
    else if (maxAgeMs > 0 && Date.now() - worker.startedAt >= maxAgeMs) why = `is older than ${maxAgeMs} ms`;
    else if (maxMemoryBytes > 0 && rss >= maxMemoryBytes) why = `uses ${rss} bytes of memory`;
    if (why === undefined) return;
    worker.state = "draining";
    this.readyCache = undefined;
    this.restarts++;
    this.metrics.recordRestart("recycled");
    this.options.logger?.info(
      { worker: worker.name, pid: worker.pid },
      `recycling a Python worker that ${why}`,
    );
    this.replace();
    void worker.close(this.options.stopGraceMs);
  }

  private changed(): void {
    this.readyCache = undefined;
    for (const wake of [...this.waiters]) wake();
    for (const listener of this.listeners) listener();
  }

  /** A direct call's timeout: the one asked for (or the pool's), shortened by the tool's own. */
  private timeoutOf(name: string, options: PoolCallOptions): number {
    const requested = options.timeoutMs ?? this.options.callTimeoutMs;
    const own = this.ownTimeouts.get(name) ?? 0;
    return own === 0 ? requested : requested === 0 ? own : Math.min(requested, own);
  }

  /** Last resort when the host process exits without stopping the pool: kill every worker's group. */
  private killAll(): void {
    for (const worker of this.workers.values()) worker.process.killGroup("SIGKILL");
  }
}
