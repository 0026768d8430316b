/** The memory store's call claims and records, kept in each session's entry. */
import type { CallClaim, CallClaimRequest, CallRecordStore } from "../call-records.js";
import type { MemorySessionState } from "./state.js";

export class MemoryCallRecordStore implements CallRecordStore {
  constructor(private readonly state: MemorySessionState) {}

  async claim(
    sessionId: string,
    requestId: string,
    claim: CallClaimRequest,
    now: number,
  ): Promise<CallClaim> {
    const entry = this.state.require(sessionId, now);
    const record = entry.records?.get(requestId);
    if (record !== undefined && record.at > now - this.state.callRecords.windowMs) {
      if (record.fingerprint !== claim.fingerprint) return { state: "reused" };
      return { state: "recorded", outcome: record.outcome };
    }
    const held = entry.claims?.get(requestId);
    if (held !== undefined && held.node !== claim.takeOverFrom && held.until > now) {
      if (held.fingerprint !== claim.fingerprint) return { state: "reused" };
      return { state: "running", node: held.node, until: held.until };
    }
    entry.claims ??= new Map();
    entry.claims.set(requestId, { node: claim.node, until: claim.until, fingerprint: claim.fingerprint });
    return { state: "claimed" };
  }

  async settle(
    sessionId: string,
    requestId: string,
    node: string,
    outcome: Uint8Array | undefined,
    now: number,
  ): Promise<void> {
    const { state } = this;
    const entry = state.live(sessionId, now);
    const held = entry?.claims?.get(requestId);
    if (entry?.claims === undefined || held?.node !== node) return;
    entry.claims.delete(requestId);
    if (outcome === undefined) return;
    state.retained.keepRecord(entry, requestId, held.fingerprint, outcome, now);
    state.retained.fit(state.pinnedBytes);
  }
}
