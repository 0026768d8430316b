/**
 * The Redis store's variables: read by scripts, written optimistically (the mutation runs
 * here, one script commits it only if the slot it saw is still current), their changes
 * logged and published in the same step (docs/stores.md#commits-lua-scripts-not-watchmulti).
 */
import { asBuffer, BridgeError, ErrorType, pb } from "@toolbridge/core";
import { sessionNotFound } from "../errors.js";
import { MAX_TOMBSTONES } from "../options.js";
import type {
  ChangeHistory,
  Following,
  VariableChange,
  VariableFilter,
  VariableMutation,
  VariableMutationResult,
  VariableSlot,
  VariableSnapshot,
  VariableStore,
} from "../variable-store.js";
import { RedisChangeFeeds } from "./change-feeds.js";
import { RedisChangeLog } from "./change-log.js";
import type { RedisConnection } from "./connection.js";
import { COMMIT, COUNTS, GET_VARIABLE, READ_SLOT, SNAPSHOT } from "./scripts/variables.js";
import { type CachedSlot, SlotCache } from "./slot-cache.js";

export interface RedisVariableStoreOptions {
  /** Changes a session's log keeps (watchHistory, at least 1 here: a feed fills gaps from it). */
  readonly history: number;
  /** Bytes a session's variables and log may take together (maxSessionVariableBytes). */
  readonly maxSessionBytes: number;
}

/** Attempts of one variable mutation that keeps meeting concurrent writes. */
const MAX_ATTEMPTS = 100;

export class RedisVariableStore implements VariableStore {
  private readonly slots = new SlotCache();
  private readonly log: RedisChangeLog;
  private readonly feeds: RedisChangeFeeds;

  constructor(
    private readonly redis: RedisConnection,
    private readonly options: RedisVariableStoreOptions,
  ) {
    redis.define(READ_SLOT, COMMIT, GET_VARIABLE, SNAPSHOT, COUNTS);
    this.log = new RedisChangeLog(redis);
    this.feeds = new RedisChangeFeeds(redis, this.log, {
      changes: options.history,
      bytes: options.maxSessionBytes,
    });
    // Without the subscription, this node may miss changes: every write reads its slot until it is back.
    redis.onSubscriberLost(() => this.slots.clear());
  }

  async get(sessionId: string, name: string, _now: number): Promise<pb.Variable | undefined> {
    const { keys } = this.redis;
    const reply = (await this.redis.run(
      GET_VARIABLE,
      [keys.meta(sessionId), keys.vars(sessionId)],
      [name],
    )) as [Buffer, Buffer | null] | null;
    if (reply === null) throw sessionNotFound(sessionId);
    return reply[1] === null ? undefined : pb.Variable.decode(reply[1]);
  }

  async list(sessionId: string, filter: VariableFilter, _now: number): Promise<VariableSnapshot> {
    const { keys } = this.redis;
    const names = filter.names !== undefined && filter.names.size > 0 ? [...filter.names] : [];
    const reply = (await this.redis.run(SNAPSHOT, [keys.meta(sessionId), keys.vars(sessionId)], names)) as
      | [Buffer, (Buffer | null)[]]
      | null;
    if (reply === null) throw sessionNotFound(sessionId);
    const prefix = filter.prefix ?? "";
    const variables: pb.Variable[] = [];
    const [sequence, fields] = reply;
    if (names.length > 0) {
      for (const encoded of fields) {
        if (encoded === null) continue;
        const variable = pb.Variable.decode(encoded);
        if (variable.name.startsWith(prefix)) variables.push(variable);
      }
    } else {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = String(fields[i]);
        const encoded = fields[i + 1];
        if (name.startsWith(prefix) && encoded != null) variables.push(pb.Variable.decode(encoded));
      }
    }
    variables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { variables, sequence: BigInt(String(sequence)) };
  }

  async count(sessionId: string, _now: number): Promise<number> {
    const { keys } = this.redis;
    const reply = (await this.redis.run(COUNTS, [keys.meta(sessionId), keys.vars(sessionId)], [])) as
      | [Buffer, number]
      | null;
    if (reply === null) throw sessionNotFound(sessionId);
    return reply[1];
  }

  /**
   * Optimistic: the mutation runs here on the slot this node last saw (or reads it
   * first), and one script commits the result only if that slot is still current in
   * Redis; otherwise the script answers with the current slot and the mutation runs
   * again. A write to a variable this node wrote or read before costs one round trip.
   */
  async mutate(
    sessionId: string,
    name: string,
    mutation: VariableMutation,
    _now: number,
  ): Promise<VariableChange> {
    const keys = this.redis.keys.session(sessionId);
    let slot = this.slots.get(sessionId, name);
    let confirmed = false;
    if (slot === undefined) {
      slot = this.parseSlot(sessionId, await this.redis.run(READ_SLOT, keys, [name]));
      confirmed = true;
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let result: VariableMutationResult;
      try {
        result = mutation(slot.slot);
      } catch (error) {
        // A refusal counts only when the slot it saw is the current one.
        if (confirmed) throw error;
        slot = this.parseSlot(sessionId, await this.redis.run(READ_SLOT, keys, [name]));
        confirmed = true;
        continue;
      }
      const encoded = result.kind === "set" ? asBuffer(pb.Variable.encode(result.variable).finish()) : "";
      const reply = (await this.redis.run(
        COMMIT,
        keys,
        this.commitArguments(sessionId, name, slot, result, encoded),
      )) as [number, ...unknown[]] | null;
      if (reply === null) {
        this.slots.dropSession(sessionId);
        throw sessionNotFound(sessionId);
      }
      if (reply[0] === 1)
        return this.committed(sessionId, name, slot, result, encoded, BigInt(reply[1] as number));
      slot = this.parseSlot(sessionId, reply.slice(1));
      confirmed = true;
    }
    throw new BridgeError(
      ErrorType.Unavailable,
      `variable '${name}' of session '${sessionId}' changed under ${MAX_ATTEMPTS} attempts to write it; retry`,
      { details: { variable: name } },
    );
  }

  onChanged(listener: (change: VariableChange) => void): void {
    this.feeds.onChanged(listener);
  }

  follow(sessionId: string, _now: number): Promise<Following> {
    return this.feeds.follow(sessionId);
  }

  onFollowLost(listener: (sessionId: string, error: BridgeError) => void): void {
    this.feeds.onFollowLost(listener);
  }

  changesSince(sessionId: string, after: bigint, _now: number): Promise<ChangeHistory> {
    return this.log.since(sessionId, after);
  }

  /** The session ended: this node forgets what it cached of it and stops following it. */
  sessionEnded(sessionId: string): void {
    this.slots.dropSession(sessionId);
    this.feeds.sessionEnded(sessionId);
  }

  close(): void {
    this.feeds.close();
  }

  /** ARGV of COMMIT (scripts/variables.ts) for `result`, computed from `seen`. */
  private commitArguments(
    sessionId: string,
    name: string,
    seen: CachedSlot,
    result: VariableMutationResult,
    encoded: Buffer | "",
  ): (string | Buffer | number)[] {
    const { slot } = seen;
    const set = result.kind === "set" ? result : undefined;
    const version = result.kind === "set" ? result.variable.version : result.version;
    return [
      name,
      slot.current === undefined ? "" : String(slot.current.version),
      String(slot.versionFloor),
      // Fewer than the limit before the commit, i.e. at most limit - 1.
      set?.maxVariables !== undefined ? set.maxVariables - 1 : slot.count,
      set === undefined ? "d" : "s",
      String(version),
      encoded,
      MAX_TOMBSTONES,
      this.options.history,
      this.redis.keys.changesChannel(sessionId),
      seen.incarnation,
      set?.maxSessionBytes !== undefined ? set.maxSessionBytes : "",
      this.options.maxSessionBytes,
      this.redis.publishCommand,
    ];
  }

  /** After a commit: the slot it leaves is cached for the next write, and a follower here gets the change. */
  private committed(
    sessionId: string,
    name: string,
    seen: CachedSlot,
    result: VariableMutationResult,
    encoded: Buffer | "",
    sequence: bigint,
  ): VariableChange {
    const { slot, incarnation } = seen;
    const count = slot.count + (slot.current === undefined ? 1 : 0) - (result.kind === "deleted" ? 1 : 0);
    if (result.kind === "set") {
      const bytes = slot.bytes - slot.currentBytes + encoded.length;
      const cached = {
        slot: { current: result.variable, versionFloor: 0n, count, bytes, currentBytes: encoded.length },
        incarnation,
      };
      this.slots.set(sessionId, name, cached, encoded.length);
    } else {
      this.slots.delete(sessionId, name);
    }
    const change: VariableChange = { sessionId, name, sequence, result };
    this.feeds.offer(change);
    return change;
  }

  private parseSlot(sessionId: string, reply: unknown): CachedSlot {
    if (reply === null) {
      this.slots.dropSession(sessionId);
      throw sessionNotFound(sessionId);
    }
    const [encoded, floor, count, incarnation, bytes] = reply as [
      Buffer | null,
      Buffer,
      number,
      Buffer,
      Buffer,
    ];
    const current = encoded === null ? undefined : pb.Variable.decode(encoded);
    const slot: VariableSlot = {
      current,
      versionFloor: current === undefined ? BigInt(String(floor)) : 0n,
      count,
      bytes: Number(String(bytes)),
      currentBytes: encoded?.length ?? 0,
    };
    return { slot, incarnation: String(incarnation) };
  }
}
