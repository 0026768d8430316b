/**
 * The memory store's variables and their changes. Every commit happens in this process, so
 * following a session costs nothing and a change reaches the listeners as it commits.
 */
import type { BridgeError, pb } from "@toolbridge/core";
import { historyTrimmed, resumeAhead } from "../errors.js";
import type {
  ChangeHistory,
  Following,
  VariableChange,
  VariableFilter,
  VariableMutation,
  VariableSnapshot,
  VariableStore,
} from "../variable-store.js";
import type { MemorySessionState } from "./state.js";

export class MemoryVariableStore implements VariableStore {
  private readonly listeners: ((change: VariableChange) => void)[] = [];

  constructor(private readonly state: MemorySessionState) {}

  async get(sessionId: string, name: string, now: number): Promise<pb.Variable | undefined> {
    return this.state.require(sessionId, now).variables?.get(name);
  }

  async list(sessionId: string, filter: VariableFilter, now: number): Promise<VariableSnapshot> {
    const entry = this.state.require(sessionId, now);
    const prefix = filter.prefix ?? "";
    const names = filter.names !== undefined && filter.names.size > 0 ? filter.names : undefined;
    const variables: pb.Variable[] = [];
    for (const [name, variable] of entry.variables ?? []) {
      if (name.startsWith(prefix) && (names === undefined || names.has(name))) variables.push(variable);
    }
    variables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { variables, sequence: entry.sequence };
  }

  async count(sessionId: string, now: number): Promise<number> {
    return this.state.require(sessionId, now).variables?.size ?? 0;
  }

  async mutate(
    sessionId: string,
    name: string,
    mutation: VariableMutation,
    now: number,
  ): Promise<VariableChange> {
    // No await between reading the slot and committing: in one event loop that makes
    // the read-modify-write atomic, which is what expected_version relies on.
    const { state } = this;
    const { retained } = state;
    const entry = state.require(sessionId, now);
    const current = entry.variables?.get(name);
    const versionFloor =
      current === undefined ? (entry.tombstones?.get(name)?.version ?? entry.versionFloor) : 0n;
    const currentBytes = entry.sizes?.get(name) ?? 0;
    const result = mutation({
      current,
      versionFloor,
      count: entry.variables?.size ?? 0,
      bytes: entry.bytes,
      currentBytes,
      storeBytes: state.pinnedBytes,
    });
    const delta = (result.kind === "set" ? result.bytes : 0) - currentBytes;
    entry.bytes += delta;
    state.variableBytes += delta;
    if (result.kind === "set") {
      entry.variables ??= new Map();
      entry.variables.set(name, result.variable);
      entry.sizes ??= new Map();
      entry.sizes.set(name, result.bytes);
      const tombstone = entry.tombstones?.get(name);
      if (tombstone !== undefined) retained.forget(tombstone);
    } else {
      entry.variables?.delete(name);
      entry.sizes?.delete(name);
      retained.keepTombstone(entry, name, result.version);
    }
    entry.sequence += 1n;
    const change: VariableChange = { sessionId, name, sequence: entry.sequence, result };
    retained.keepChange(entry, change);
    retained.fit(state.pinnedBytes);
    for (const listener of this.listeners) listener(change);
    return change;
  }

  onChanged(listener: (change: VariableChange) => void): void {
    this.listeners.push(listener);
  }

  /** Every change of this store is committed in this process, so following costs nothing. */
  async follow(sessionId: string, now: number): Promise<Following> {
    return { sequence: this.state.require(sessionId, now).sequence, close: () => {} };
  }

  /** Nothing is lost between a commit and its listeners in one process. */
  onFollowLost(_listener: (sessionId: string, error: BridgeError) => void): void {}

  async changesSince(sessionId: string, after: bigint, now: number): Promise<ChangeHistory> {
    const entry = this.state.require(sessionId, now);
    const { sequence } = entry;
    if (after > sequence) throw resumeAhead(sessionId, after, sequence);
    const oldest = entry.history?.oldestSequence ?? 1n;
    const changes: VariableChange[] = [];
    for (let s = after + 1n; s <= sequence; s++) {
      const kept = entry.history?.get(s);
      if (kept === undefined) throw historyTrimmed(sessionId, after, oldest > s ? oldest : sequence + 1n);
      changes.push(kept.change);
    }
    return { changes, sequence };
  }
}
