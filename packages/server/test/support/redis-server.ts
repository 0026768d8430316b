/**
 * A real redis-server (Debian's package; `make test` installs it when missing) on a free
 * loopback port, for the Redis store's tests. Its files live in a temporary directory
 * that stop() removes; with `durable` it writes an append-only file synced on every
 * write, so that a SIGKILL loses nothing it acknowledged and a restart finds the data.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:<port>/0 */
  readonly url: string;
  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (after kill). */
  restart(): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

/** A free loopback port (for a Redis server, a cluster bus, a sentinel). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function launch(port: number, dir: string, durable: boolean): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
  args.push("--appendonly", durable ? "yes" : "no", "--appendfsync", "always", "--loglevel", "warning");
  return launchRedis(port, args);
}

/**
 * Runs `program` (redis-server, or redis-sentinel with a config file) with `args` and waits
 * until it answers PING on `port`.
 */
export async function launchRedis(
  port: number,
  args: string[],
  program = "redis-server",
): Promise<ChildProcess> {
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (text: Buffer) => {
    output += text.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${program} did not start within 10 s:\n${output}`)),
      10_000,
    );
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${program} (run 'make redis-server' to install it): ${error.message}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${program} exited with ${code}:\n${output}`));
    });
    const poll = async () => {
      // Ready once it accepts a connection and answers PING.
      const { Socket } = await import("node:net");
      const socket = new Socket();
      socket.once("error", () => {
        socket.destroy();
        setTimeout(poll, 20);
      });
      socket.connect(port, "127.0.0.1", () => {
        socket.write("PING\r\n");
        socket.once("data", (data) => {
          socket.destroy();
          // A server with a password answers NOAUTH: it is up all the same.
          if (/^(\+PONG|-NOAUTH)/.test(data.toString())) {
            clearTimeout(timer);
            child.removeAllListeners("exit");
            resolve();
          } else setTimeout(poll, 20);
        });
      });
    };
    void poll();
  });
  return child;
}

/** A process to kill: SIGKILL by default, waiting for it to exit. */
export async function killProcess(
  child: ChildProcess | undefined,
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill(signal);
  await exited;
}

export async function startRedis(options: { durable?: boolean } = {}): Promise<RedisServer> {
  const durable = options.durable ?? false;
  const dir = mkdtempSync(join(tmpdir(), "toolbridge-redis-"));
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port, dir, durable);
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, "exit");
    running.kill(signal);
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    async restart() {
      await kill();
      child = await launch(port, dir, durable);
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
