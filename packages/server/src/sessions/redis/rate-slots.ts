/** Rate limits of global tools counted in Redis, by every node together. */
import type { RateSlots } from "../rate-slots.js";
import type { RedisConnection } from "./connection.js";
import { RATE } from "./scripts/rate-slots.js";

export class RedisRateSlots implements RateSlots {
  /** Starts taken through this node, to make each start's id unique in the tool's window. */
  private starts = 0;

  constructor(private readonly redis: RedisConnection) {
    redis.define(RATE);
  }

  /**
   * Counts a start of `tool` against its rate limit in Redis, shared by every node: 0 when
   * admitted, else the milliseconds until a start leaves the 60-second window.
   */
  async take(tool: string, limit: number): Promise<number> {
    this.starts = (this.starts + 1) % Number.MAX_SAFE_INTEGER;
    return (await this.redis.run(
      RATE,
      [this.redis.keys.rate(tool)],
      [limit, `${this.redis.nodeId}:${this.starts}`],
    )) as number;
  }
}
