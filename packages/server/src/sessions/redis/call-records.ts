/** The Redis store's call claims and records: one script claims a request id, one settles it. */
import { asBuffer } from "@toolbridge/core";
import type { CallClaim, CallClaimRequest, CallRecordLimits, CallRecordStore } from "../call-records.js";
import { sessionNotFound } from "../errors.js";
import type { RedisConnection } from "./connection.js";
import { CLAIM_CALL, SETTLE_CALL } from "./scripts/call-records.js";

export class RedisCallRecordStore implements CallRecordStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly limits: Required<CallRecordLimits>,
  ) {
    redis.define(CLAIM_CALL, SETTLE_CALL);
  }

  async claim(
    sessionId: string,
    requestId: string,
    claim: CallClaimRequest,
    now: number,
  ): Promise<CallClaim> {
    const reply = (await this.redis.run(CLAIM_CALL, this.redis.keys.calls(sessionId), [
      requestId,
      claim.node,
      Math.ceil(claim.until),
      now,
      this.limits.windowMs,
      claim.takeOverFrom ?? "",
      claim.fingerprint,
    ])) as [number, ...Buffer[]] | null;
    if (reply === null) throw sessionNotFound(sessionId);
    if (reply[0] === 3) return { state: "reused" };
    if (reply[0] === 1) return { state: "recorded", outcome: reply[1] as Buffer };
    if (reply[0] === 2) return { state: "running", node: String(reply[1]), until: Number(String(reply[2])) };
    return { state: "claimed" };
  }

  async settle(
    sessionId: string,
    requestId: string,
    node: string,
    outcome: Uint8Array | undefined,
    now: number,
  ): Promise<void> {
    await this.redis.run(SETTLE_CALL, this.redis.keys.calls(sessionId), [
      requestId,
      node,
      outcome === undefined ? "" : asBuffer(outcome),
      now,
      this.limits.windowMs,
      this.limits.maxRecords,
      this.limits.maxBytes,
    ]);
  }
}
