/**
 * Starts the real host CLI as a child process on an ephemeral loopback port, as the
 * integration tests of every package use it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
export const CLI = `${REPO_ROOT}packages/server/dist/cli.js`;
export const TEST_TOOLS = `${REPO_ROOT}testdata/tools/test-tools.ts`;

export interface HostProcess {
  readonly target: string;
  /** The Prometheus endpoint, when started with a `metrics-port` flag. */
  readonly metricsUrl: string | undefined;
  readonly process: ChildProcess;
  /** Everything the host wrote to stderr so far (its logs). */
  stderr(): string;
  /** Everything the host wrote to stdout so far (what the CLI prints). */
  stdout(): string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** How the host's process is started beyond its flags: Node's own options, its environment. */
export interface LaunchOptions {
  /** Options for node before the CLI, e.g. `--import` of a module hook. */
  readonly nodeArgs?: readonly string[];
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

export async function startHost(
  flags: Record<string, string | number> = {},
  tools = [TEST_TOOLS],
  options: LaunchOptions = {},
): Promise<HostProcess> {
  const args = [CLI, "serve", ...tools.flatMap((t) => ["--tools", t]), "--host", "127.0.0.1", "--port", "0"];
  for (const [key, value] of Object.entries({ "log-level": "warn", ...flags }))
    args.push(`--${key}`, String(value));
  return launch([...(options.nodeArgs ?? []), ...args], options.env);
}

/** Runs a TypeScript program that embeds a host and prints the CLI's ready line (e.g. support/embedded-host.ts). */
export function startEmbeddedHost(script: string): Promise<HostProcess> {
  return launch(["--import", "tsx", script]);
}

async function launch(args: string[], env?: Readonly<Record<string, string>>): Promise<HostProcess> {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: env === undefined ? process.env : { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  let stdout = "";
  const target = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`host did not start within 20 s:\n${stderr}`)), 20_000);
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
      const match = /serving on (\S+) with/.exec(stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`host exited with ${code} before serving:\n${stderr}`));
    });
  });
  const exited = once(child, "exit") as Promise<[number | null]>;
  return {
    target,
    metricsUrl: /metrics on (\S+)/.exec(stdout)?.[1],
    process: child,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
}
