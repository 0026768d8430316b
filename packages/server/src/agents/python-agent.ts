/**
 * Starts a DSPy ReAct agent in a Python worker: `python -m toolbridge.agent`, attached to a
 * session of this host. The worker calls the session's tools over gRPC like any client and
 * records the run (thoughts, tool calls, observations, answer) in the session; this side
 * follows its progress from the JSON lines it prints.
 *
 *   const result = await runPythonAgent({ address: "127.0.0.1:50051", sessionId,
 *     tools: ["search_docs", "calculate"], inputs: { question: "..." },
 *     onEvent: (event) => console.log(event) });
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { BridgeError, ErrorType } from "@toolbridge/core";
import { processTracing } from "../tracing/contract.js";
import type { AgentEvent, PythonAgentResult, WorkerAgentOptions } from "../workers/agent-run.js";
import type { WorkerPool } from "../workers/pool.js";

/** TLS settings for a spawned agent, as PEM file paths (the agent reads them itself). */
export interface AgentTlsFiles {
  /** The CA bundle of the host's certificate. */
  ca?: string;
  /** A client certificate and its key, for a host that requires one. */
  cert?: string;
  key?: string;
  /** The name to check the host's certificate against. */
  serverName?: string;
}

/** `runPythonAgent`'s options: the run's (`WorkerAgentOptions`), and how to reach the host from a new process. */
export interface PythonAgentOptions extends WorkerAgentOptions {
  /**
   * The host address the worker dials, e.g. `127.0.0.1:50051`; for the host this process
   * runs, `host.clientTarget` (with `token: host.hostToken`).
   */
  address: string;
  /**
   * A bearer token for a host that authenticates callers; the worker gets it in its
   * environment (`TOOLBRIDGE_TOKEN`), never on its command line.
   */
  token?: string;
  /** TLS to a host serving it: PEM files, passed as `--tls-*` flags. */
  tls?: AgentTlsFiles;
  /** The Python interpreter with `toolbridge[dspy]` installed; default `$TOOLBRIDGE_PYTHON`, else `python3`. */
  python?: string;
  cwd?: string;
  /** The worker's environment (default: this process's). The LM's API key is read from it. */
  env?: NodeJS.ProcessEnv;
  /** Each line the worker writes to stderr: its readable progress, warnings, errors. */
  onStderr?: (line: string) => void;
  /**
   * Run on a warm worker of this pool (`host.workers`) instead of spawning an interpreter:
   * DSPy is already imported there. `address`, `token`, `tls`, `python`, `cwd`, `env` and
   * `onStderr` then do not apply: the worker attaches to the host its pool was started for,
   * with that host's credentials, and dials no other address.
   */
  workers?: WorkerPool;
}

/** The command line `runPythonAgent` runs (without the interpreter). */
export function pythonAgentArgs(options: PythonAgentOptions): string[] {
  const args = [
    "-m",
    "toolbridge.agent",
    "--address",
    options.address,
    "--session",
    options.sessionId,
    "--events",
  ];
  if (options.agentId !== undefined) args.push("--agent", options.agentId);
  if (options.signature !== undefined) args.push("--signature", options.signature);
  if (options.tools !== undefined) args.push("--tools", options.tools.join(","));
  if (options.maxIters !== undefined) args.push("--max-iters", String(options.maxIters));
  if (options.instructions !== undefined) args.push("--instructions", options.instructions);
  for (const [name, value] of Object.entries(options.inputs ?? {})) {
    args.push("--input-json", `${name}=${JSON.stringify(value)}`);
  }
  if (options.lmFactory !== undefined) args.push("--lm-factory", options.lmFactory);
  else if (options.lm !== undefined) args.push("--lm", options.lm);
  if (options.script !== undefined) args.push("--script", options.script);
  const { tls } = options;
  if (tls?.ca !== undefined) args.push("--tls-ca", tls.ca);
  if (tls?.cert !== undefined) args.push("--tls-cert", tls.cert);
  if (tls?.key !== undefined) args.push("--tls-key", tls.key);
  if (tls?.serverName !== undefined) args.push("--tls-server-name", tls.serverName);
  return args;
}

/**
 * While a host of this process traces: the spawned interpreter traces too, and its run
 * continues the active trace, as OpenTelemetry's environment carriers name it (TRACEPARENT,
 * TRACESTATE, BAGGAGE).
 */
function tracingEnv(): Record<string, string> {
  const tracing = processTracing.current;
  if (tracing === undefined) return {};
  const env: Record<string, string> = { TOOLBRIDGE_TRACING: "true" };
  for (const [key, value] of Object.entries(tracing.activeCarrier())) env[key.toUpperCase()] = value;
  return env;
}

/**
 * Runs the agent in a Python worker and resolves with its result once the worker exits. A run
 * that fails (its LM call failed, ...) resolves with `status: "failed"`: it is recorded in the
 * session like a successful one. When no run happened it rejects with a BridgeError
 * (`agentNotRun` says which type; a warm worker's error comes as the pool raised it).
 */
export function runPythonAgent(options: PythonAgentOptions): Promise<PythonAgentResult> {
  if (options.workers !== undefined) return runOnWorkers(options.workers, options);
  const base = options.env ?? process.env;
  const env = {
    ...(options.token === undefined ? base : { ...base, TOOLBRIDGE_TOKEN: options.token }),
    ...tracingEnv(),
  };
  const python = options.python ?? env.TOOLBRIDGE_PYTHON ?? "python3";
  return new Promise((resolve, reject) => {
    const child = spawn(python, pythonAgentArgs(options), {
      cwd: options.cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stderr: string[] = [];
    let result: PythonAgentResult | undefined;
    let badLine: string | undefined;

    const onAbort = () => child.kill("SIGTERM");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();

    createInterface({ input: child.stderr }).on("line", (line) => {
      stderr.push(line);
      options.onStderr?.(line);
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      const parsed = parseLine(line);
      if (parsed === undefined) badLine ??= line;
      else if (parsed.kind === "run_finished") result = runResult(parsed);
      else options.onEvent?.(parsed as unknown as AgentEvent);
    });

    child.on("error", (error) => {
      options.signal?.removeEventListener("abort", onAbort);
      reject(notStarted(python, error));
    });
    // 'close', not 'exit': it fires after stdout and stderr are drained, so every line is in.
    child.on("close", (code, signal) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (result !== undefined) resolve(result);
      else reject(agentNotRun({ code, signal, stderr, badLine, aborted: options.signal?.aborted === true }));
    });
  });
}

/** A line of the worker's stdout as the object it holds; undefined for anything else. */
function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // not JSON: reported with the failure, if the worker fails
  }
  return undefined;
}

/** The `run_finished` line, the last a worker prints, as the run's result. */
function runResult(line: Record<string, unknown>): PythonAgentResult {
  return {
    agentId: String(line.agentId),
    runId: String(line.runId),
    status: line.status === "succeeded" ? "succeeded" : "failed",
    outputs: (line.outputs ?? {}) as Record<string, unknown>,
    error: String(line.error ?? ""),
  };
}

/** The interpreter could not be started at all. */
function notStarted(python: string, error: Error): BridgeError {
  return new BridgeError(
    ErrorType.Unavailable,
    `cannot start the Python agent worker '${python}': ${error.message}; ` +
      "set TOOLBRIDGE_PYTHON (or the python option) to an interpreter with toolbridge[dspy] installed",
    { details: { reason: "agent_not_started" }, cause: error },
  );
}

/** The worker's stderr kept in an error's details: its end, where the reason is. */
const STDERR_DETAIL_CHARS = 8192;

interface WorkerEnding {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: readonly string[];
  /** The first stdout line that was not an event, if any. */
  badLine: string | undefined;
  /** The caller aborted the run. */
  aborted: boolean;
}

/**
 * Why a spawned worker ended without a run, by its exit code: 2, bad options or an agent
 * definition the session cannot run (ValidationError); 3, the host or the session cannot be
 * reached (Unavailable); stopped through `signal` (Cancelled); anything else (Unavailable).
 */
function agentNotRun({ code, signal, stderr, badLine, aborted }: WorkerEnding): BridgeError {
  const output = stderr.join("\n");
  const why = stderr.filter((line) => line.startsWith("error:")).join("; ") || output.slice(-2000);
  const ending = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
  const extra = badLine === undefined ? "" : ` (unexpected output: ${badLine.slice(0, 200)})`;
  const [type, reason] =
    code === 2
      ? [ErrorType.ValidationError, "agent_invalid"]
      : code === 3
        ? [ErrorType.Unavailable, "agent_unreachable"]
        : aborted
          ? [ErrorType.Cancelled, "agent_stopped"]
          : [ErrorType.Unavailable, "agent_exited"];
  const details: Record<string, string> = { reason, stderr: output.slice(-STDERR_DETAIL_CHARS) };
  if (code !== null) details.exit_code = String(code);
  if (signal !== null) details.signal = signal;
  return new BridgeError(type, `the Python agent worker ${ending}: ${why}${extra}`, { details });
}

/** A warm worker's run: the pool's BridgeError when none could start, as `host.workers.runAgent` gives it. */
function runOnWorkers(pool: WorkerPool, options: PythonAgentOptions): Promise<PythonAgentResult> {
  const { workers: _pool, address: _address, token: _token, tls: _tls, ...rest } = options;
  const { python: _python, cwd: _cwd, env: _env, onStderr: _onStderr, ...agent } = rest;
  return pool.runAgent(agent);
}
