/**
 * What this node remembers of the calls it finished, for ListRecentCalls and GetToolStats:
 * the latest calls (a ring of fixed size) and, per tool, counts and timings over the last
 * minutes (a ring of one-second intervals). Both are fed by HostMetrics.onCall and cost a
 * few writes per call, so they are always on.
 */
import { type pb, toPbTimestamp } from "@toolbridge/core";
import type { FinishedCall } from "../metrics/metrics.js";

/** A recorded call: a FinishedCall with its place in the log and when it finished. */
export interface LoggedCall extends FinishedCall {
  readonly sequence: number;
  readonly finishedAt: number;
}

/** Characters of an error message the log keeps. */
const MESSAGE_CHARS = 300;

/** The latest `capacity` finished calls, numbered from 1 in the order they finished. */
export class RecentCalls {
  private readonly ring: (LoggedCall | undefined)[];
  private sequence = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<LoggedCall | undefined>(capacity);
  }

  /** The sequence of the newest call recorded; 0 before the first. */
  get last(): number {
    return this.sequence;
  }

  record(call: FinishedCall, now = Date.now()): void {
    if (this.capacity === 0) return;
    this.sequence++;
    const error =
      call.error === undefined || call.error.message.length <= MESSAGE_CHARS
        ? call.error
        : { ...call.error, message: call.error.message.slice(0, MESSAGE_CHARS) };
    // Every field named, not spread: one object shape for the whole ring keeps this a few stores
    // (a spread of the callers' differently built objects took V8's slow path, ~1.5 µs a call).
    this.ring[this.sequence % this.capacity] = {
      tool: call.tool,
      sessionId: call.sessionId,
      requestId: call.requestId,
      principal: call.principal,
      streamed: call.streamed,
      protocol: call.protocol,
      durationMs: call.durationMs,
      hostMs: call.hostMs,
      error,
      sequence: this.sequence,
      finishedAt: now,
    };
  }

  /** The calls after `sequence` still kept, oldest first. */
  after(sequence: number): LoggedCall[] {
    const first = Math.max(sequence + 1, this.sequence - this.capacity + 1, 1);
    const calls: LoggedCall[] = [];
    for (let at = first; at <= this.sequence; at++) {
      const call = this.ring[at % this.capacity];
      if (call !== undefined) calls.push(call);
    }
    return calls;
  }
}

/** A logged call as the CallRecord of ListRecentCalls. */
export function callRecord(call: LoggedCall): pb.CallRecord {
  return {
    sequence: BigInt(call.sequence),
    tool: call.tool,
    sessionId: call.sessionId,
    requestId: call.requestId,
    principal: call.principal,
    streamed: call.streamed,
    protocol: call.protocol,
    finishedAt: toPbTimestamp(call.finishedAt),
    durationMs: call.durationMs ?? 0,
    hostMs: call.hostMs,
    errorType: call.error?.type ?? "",
    errorMessage: call.error?.message ?? "",
  };
}

/** Length of one interval of ToolActivity. */
export const INTERVAL_MS = 1000;
/** Intervals kept per tool: five minutes. */
const INTERVALS = 300;
/** Tools kept; beyond this the one called least recently is forgotten. */
const MAX_TOOLS = 256;

/** One tool's intervals: slot i holds interval `stamp[i]` (epoch ms / INTERVAL_MS). */
class ToolSeries {
  readonly stamp = new Float64Array(INTERVALS).fill(-1);
  readonly calls = new Uint32Array(INTERVALS);
  readonly errors = new Uint32Array(INTERVALS);
  readonly totalMs = new Float64Array(INTERVALS);
  readonly maxMs = new Float64Array(INTERVALS);

  add(interval: number, call: FinishedCall): void {
    const slot = interval % INTERVALS;
    if (this.stamp[slot] !== interval) {
      this.stamp[slot] = interval;
      this.calls[slot] = 0;
      this.errors[slot] = 0;
      this.totalMs[slot] = 0;
      this.maxMs[slot] = 0;
    }
    this.calls[slot] = (this.calls[slot] ?? 0) + 1;
    if (call.error !== undefined) this.errors[slot] = (this.errors[slot] ?? 0) + 1;
    const ms = call.durationMs ?? 0;
    this.totalMs[slot] = (this.totalMs[slot] ?? 0) + ms;
    if (ms > (this.maxMs[slot] ?? 0)) this.maxMs[slot] = ms;
  }

  /** The intervals ending with `newest`, oldest first; undefined when none of them saw a call. */
  stats(tool: string, newest: number): pb.ToolStats | undefined {
    const out: pb.ToolStats = { tool, calls: [], errors: [], meanMs: [], maxMs: [] };
    let any = false;
    for (let interval = newest - INTERVALS + 1; interval <= newest; interval++) {
      const slot = interval % INTERVALS;
      const current = this.stamp[slot] === interval;
      const calls = current ? (this.calls[slot] ?? 0) : 0;
      any ||= calls > 0;
      out.calls.push(calls);
      out.errors.push(current ? (this.errors[slot] ?? 0) : 0);
      out.meanMs.push(calls > 0 ? (this.totalMs[slot] ?? 0) / calls : 0);
      out.maxMs.push(current ? (this.maxMs[slot] ?? 0) : 0);
    }
    return any ? out : undefined;
  }
}

/** Per tool, the calls of each second over the last five minutes (GetToolStats). */
export class ToolActivity {
  /** In order of the latest call (a Map keeps insertion order; a call re-inserts its tool). */
  private readonly tools = new Map<string, ToolSeries>();
  /** The tool inserted last: calls in a row to one tool leave the order as it is. */
  private newest: string | undefined;

  record(call: FinishedCall, now = Date.now()): void {
    let series = this.tools.get(call.tool);
    if (series === undefined || call.tool !== this.newest) {
      if (series === undefined) {
        series = new ToolSeries();
        if (this.tools.size >= MAX_TOOLS) {
          const oldest = this.tools.keys().next().value;
          if (oldest !== undefined) this.tools.delete(oldest);
        }
      } else {
        this.tools.delete(call.tool);
      }
      this.tools.set(call.tool, series);
      this.newest = call.tool;
    }
    series.add(Math.floor(now / INTERVAL_MS), call);
  }

  snapshot(now = Date.now()): pb.GetToolStatsResponse {
    const newest = Math.floor(now / INTERVAL_MS);
    const tools: pb.ToolStats[] = [];
    for (const [tool, series] of this.tools) {
      const stats = series.stats(tool, newest);
      if (stats !== undefined) tools.push(stats);
    }
    tools.sort((a, b) => (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0));
    return { intervalMs: INTERVAL_MS, end: toPbTimestamp((newest + 1) * INTERVAL_MS), tools };
  }
}
