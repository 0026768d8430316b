/**
 * Helpers for the worker pool tests: pool options over testdata/workers/pool_tools.py, and
 * the process table (/proc), read to prove that no worker or process it started outlives
 * its pool.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { WorkerPoolOptions } from "@toolbridge/server";
import { REPO_ROOT } from "./host-process.js";

export const PYTHON = process.env.TOOLBRIDGE_PYTHON ?? `${REPO_ROOT}.venv/bin/python`;
export const POOL_TOOLS = `${REPO_ROOT}testdata/workers/pool_tools.py`;
export const WORKERS_DIR = `${REPO_ROOT}testdata/workers`;

/** A pool over pool_tools.py with quick heartbeats and without DSPy, unless `overrides` say otherwise. */
export function poolOptions(overrides: Partial<WorkerPoolOptions> = {}): WorkerPoolOptions {
  return {
    size: 1,
    modules: ["pool_tools"],
    python: PYTHON,
    cwd: WORKERS_DIR,
    preloadAgents: false,
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: 2000,
    stopGraceMs: 2000,
    ...overrides,
  };
}

interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  /** R, S, D, T (stopped), Z (zombie: exited, not yet reaped), ... */
  readonly state: string;
}

/** Every process in the table now. */
export function processTable(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // The command name in parentheses may contain spaces; the fields after it are fixed.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    entries.push({
      pid: Number(name),
      state: fields[0] ?? "",
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
    });
  }
  return entries;
}

/** Live (not zombie) processes that are one of `pids` or in one of their process groups. */
export function survivors(pids: readonly number[]): ProcessEntry[] {
  const wanted = new Set(pids);
  return processTable().filter((p) => p.state !== "Z" && (wanted.has(p.pid) || wanted.has(p.pgrp)));
}

/** The children of `pid` now. */
export function childrenOf(pid: number): number[] {
  return processTable()
    .filter((p) => p.ppid === pid && p.state !== "Z")
    .map((p) => p.pid);
}
