/**
 * One Python worker process: spawned in its own process group, ready once it prints its
 * address, killed with its whole group. Knows nothing about gRPC.
 */
import { type ChildProcess, type ChildProcessByStdio, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { ResolvedPoolOptions } from "./options.js";

const READY = /^toolbridge worker ready (\S+) pid=(\d+)/;
const STDERR_KEPT = 50;

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface WorkerProcess {
  readonly pid: number;
  /** The gRPC target the worker listens on, e.g. `unix:/tmp/toolbridge-workers-x/w1.sock`. */
  readonly target: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** The last lines the worker wrote to stderr. */
  stderrTail(): string;
  /**
   * Signals the worker's whole process group: the worker and whatever its tools started.
   * Also after the worker exited, when what it started may still run in the group.
   */
  killGroup(signal: NodeJS.Signals): void;
}

/** How a process ended, for messages: "exited with code 2" or "was killed by SIGKILL". */
export function describeExit(exit: ExitInfo): string {
  return exit.code === null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Spawns a worker listening on `socketPath` (in a private directory of this process, which the
 * worker removes if this process dies without doing so) and resolves once it reports ready.
 * Its agent runs attach to `hostAddress` and nowhere else; without one it runs none.
 */
export function spawnWorker(
  options: ResolvedPoolOptions,
  name: string,
  socketPath: string,
  hostAddress: string | undefined,
): Promise<WorkerProcess> {
  // detached: the worker leads a new process group, so one signal reaches everything it started.
  const child = spawn(options.python, workerArgs(options, socketPath, hostAddress), {
    cwd: options.cwd,
    env: { ...options.env, PYTHONUNBUFFERED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on("line", (line) => {
    stderr.push(line);
    if (stderr.length > STDERR_KEPT) stderr.shift();
    options.logger?.debug({ worker: name, pid: child.pid }, line);
  });
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  let groupGone = false;
  const killGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined || groupGone) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // ESRCH: nothing is left in the group; its id may be reused from now on.
      groupGone = true;
    }
  };
  return whenReady(child, name, options, { exited, stderrTail: () => stderr.join("\n"), killGroup });
}

/** The worker's command line (without the interpreter). */
function workerArgs(
  options: ResolvedPoolOptions,
  socketPath: string,
  hostAddress: string | undefined,
): string[] {
  const args = [
    "-m",
    "toolbridge.worker",
    "--socket",
    socketPath,
    "--heartbeat-timeout-ms",
    String(options.heartbeatTimeoutMs),
    "--parent-pid",
    String(process.pid),
    "--remove-socket-dir",
    "--max-message-bytes",
    String(options.maxMessageBytes),
    ...options.modules.flatMap((module) => ["--module", module]),
  ];
  if (options.preloadAgents) args.push("--preload-agents");
  if (hostAddress !== undefined) args.push("--host-address", hostAddress);
  return args;
}

/**
 * Resolves with the worker once it prints that it is ready; rejects with Unavailable (its
 * stderr's last lines in the message) when it exits, cannot start, or takes longer than
 * `startTimeoutMs`, having killed its process group.
 */
function whenReady(
  child: ChildProcessByStdio<null, Readable, Readable>,
  name: string,
  options: ResolvedPoolOptions,
  handle: Pick<WorkerProcess, "exited" | "stderrTail" | "killGroup">,
): Promise<WorkerProcess> {
  const { exited, stderrTail, killGroup } = handle;
  return new Promise<WorkerProcess>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      killGroup("SIGKILL");
      const tail = stderrTail();
      reject(
        new BridgeError(ErrorType.Unavailable, `Python worker ${name} ${why}${tail ? `:\n${tail}` : ""}`, {
          details: { worker: name, reason: "worker_start_failed" },
        }),
      );
    };
    const timer = setTimeout(
      () => fail(`did not report ready within ${options.startTimeoutMs} ms`),
      options.startTimeoutMs,
    );
    const onError = (error: Error) =>
      fail(
        `could not start '${options.python}': ${error.message}; set TOOLBRIDGE_PYTHON (or the python option) ` +
          "to an interpreter with toolbridge[worker] installed",
      );
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`${describeExit({ code, signal })} before it was ready`);
    child.once("error", onError);
    child.once("exit", onExit);
    let ready = false;
    // stdout is read to the end: a tool that prints must never block on a full pipe.
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = ready ? null : READY.exec(line);
      if (match === null || child.pid === undefined) {
        options.logger?.debug({ worker: name, pid: child.pid, stdout: true }, line);
        return;
      }
      ready = true;
      clearTimeout(timer);
      child.off("error", onError);
      child.off("exit", onExit);
      resolve({
        pid: child.pid,
        target: match[1] as string,
        child,
        exited,
        stderrTail,
        killGroup,
      });
    });
  });
}
