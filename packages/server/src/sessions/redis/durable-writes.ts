/**
 * The wait setting (storeWaitReplicas, docs/stores.md#failover): Redis replicates
 * asynchronously, so a master that dies can take writes it already acknowledged with it.
 * A script that makes a write which must not be lost (LuaScript.durable) is sent on a
 * connection of its own, followed by `WAIT <replicas> <timeout>`, and only acknowledged to
 * the caller once that many replicas have it; fewer is a ReplicaAckError (Unavailable,
 * retriable). The writes of one tick to one master share a WAIT (one pipeline), and the
 * connection is not the one every other command uses, since WAIT holds up the commands
 * behind it on its connection.
 */
import type { Cluster, Redis } from "ioredis";
import { ReplicaAckError } from "./faults.js";
import type { ScriptArgument } from "./scripts/lua.js";

interface Write {
  readonly command: string;
  readonly args: readonly ScriptArgument[];
  resolve(reply: unknown): void;
  reject(error: unknown): void;
}

type PipelineCall = (...args: ScriptArgument[]) => unknown;

export class DurableWrites {
  /** The writes of this tick, by the master they go to ("" on one Redis or a Sentinel group). */
  private readonly batches = new Map<string, Write[]>();

  constructor(
    private readonly client: Redis | Cluster,
    private readonly replicas: number,
    private readonly timeoutMs: number,
    /** The master a key's slot is on (its node key), or "" where there is one master. */
    private readonly masterOf: (key: string) => string,
  ) {}

  /** Runs the defined command `command` (a script) on `keys` and `args`, then waits for the replicas. */
  run(command: string, keys: readonly string[], args: readonly ScriptArgument[]): Promise<unknown> {
    const master = keys[0] === undefined ? "" : this.masterOf(keys[0]);
    let batch = this.batches.get(master);
    if (batch === undefined) {
      const made: Write[] = [];
      batch = made;
      this.batches.set(master, made);
      process.nextTick(() => this.flush(master, made));
    }
    const writes = batch;
    return new Promise((resolve, reject) =>
      writes.push({ command, args: [...keys, ...args], resolve, reject }),
    );
  }

  private async flush(master: string, writes: Write[]): Promise<void> {
    if (this.batches.get(master) === writes) this.batches.delete(master);
    let results: [Error | null, unknown][] | null;
    try {
      const pipeline = this.client.pipeline();
      const calls = pipeline as unknown as Record<string, PipelineCall | undefined>;
      for (const write of writes) {
        const call = calls[write.command];
        if (call === undefined) throw new Error(`${write.command} is not defined on the durable connection`);
        call.apply(pipeline, [...write.args]);
      }
      pipeline.wait(this.replicas, this.timeoutMs);
      results = await pipeline.exec();
    } catch (error) {
      for (const write of writes) write.reject(error);
      return;
    }
    const [waitError, acknowledged] = results?.at(-1) ?? [new Error("Connection is closed."), 0];
    const short =
      waitError ??
      (Number(acknowledged) < this.replicas
        ? new ReplicaAckError(Number(acknowledged), this.replicas, this.timeoutMs)
        : undefined);
    writes.forEach((write, index) => {
      const [error, reply] = results?.[index] ?? [waitError, undefined];
      if (error !== null && error !== undefined) write.reject(error);
      else if (short !== undefined) write.reject(short);
      else write.resolve(reply);
    });
  }
}
