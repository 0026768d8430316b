/** The per-session tool directory in Redis: the `{id}:tools` hash of each session, name -> "<node>|<spec>". */
import { asBuffer } from "@toolbridge/core";
import { sessionNotFound } from "../errors.js";
import type { SessionToolDirectory } from "../session-tools.js";
import type { RedisConnection } from "./connection.js";
import { SESSION_TOOL } from "./scripts/session-tools.js";

export class RedisSessionToolDirectory implements SessionToolDirectory {
  constructor(private readonly redis: RedisConnection) {
    redis.define(SESSION_TOOL);
  }

  /** Lists a session tool (its encoded ToolSpec) as served by this node. Throws SessionNotFound. */
  async publish(sessionId: string, name: string, spec: Uint8Array): Promise<void> {
    const { nodeId } = this.redis;
    const value = Buffer.concat([Buffer.from(`${nodeId}|`), asBuffer(spec)]);
    const done = (await this.redis.run(SESSION_TOOL, this.redis.keys.tools(sessionId), [
      name,
      value,
      nodeId,
    ])) as number;
    if (done !== 1) throw sessionNotFound(sessionId);
  }

  /** Removes a session tool this node listed. */
  async withdraw(sessionId: string, name: string): Promise<void> {
    await this.redis.run(SESSION_TOOL, this.redis.keys.tools(sessionId), [name, "", this.redis.nodeId]);
  }

  /** The session tools every node listed for the session, by name: the serving node and the spec. */
  async list(sessionId: string): Promise<Map<string, { node: string; spec: Buffer }>> {
    const key = this.redis.keys.tools(sessionId)[1] as string;
    const fields = await this.redis.call((r) => r.hgetallBuffer(key));
    const tools = new Map<string, { node: string; spec: Buffer }>();
    for (const [name, value] of Object.entries(fields)) {
      const bar = value.indexOf(0x7c);
      tools.set(name, { node: value.toString("latin1", 0, bar), spec: value.subarray(bar + 1) });
    }
    return tools;
  }
}
