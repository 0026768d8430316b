/**
 * What the memory store keeps for a session beyond its live state: the latest changes (for
 * resuming watches), the outcomes of calls (for replay) and the last versions of deleted
 * names. Each is dropped when a bound of its session says so, and all of them are also
 * queued oldest first across sessions, so that the store can drop the oldest of any session
 * when its byte total (maxTotalVariableBytes) would be passed. Dropping one never breaks a
 * promise: a watch that needed a dropped change is told its history was trimmed, a retry
 * whose record was dropped runs as a new call, and a dropped name's version folds into its
 * session's version floor.
 */
import type { CallRecordLimits } from "../call-records.js";
import { MAX_TOMBSTONES } from "../options.js";
import type { StoreUsage } from "../store.js";
import type { VariableChange } from "../variable-store.js";

/** What the memory store counts for a record beyond its outcome and request id (its claim's node, its time). */
export const RECORD_OVERHEAD_BYTES = 64;

export type RetainedKind = "change" | "record" | "deleted";

/** One thing kept for a session: a node of the store-wide queue. */
export interface Retained<Item> {
  readonly kind: RetainedKind;
  /** Its encoded size: what it counts against the bounds. */
  readonly bytes: number;
  older: Item | undefined;
  newer: Item | undefined;
  queued: boolean;
}

/** Everything the store retains, oldest first, with its byte total. */
export class RetentionQueue<Item extends Retained<Item>> {
  private oldestItem: Item | undefined;
  private newestItem: Item | undefined;
  private total = 0;
  private changes = 0;
  private records = 0;
  private deleted = 0;

  get bytes(): number {
    return this.total;
  }

  get oldest(): Item | undefined {
    return this.oldestItem;
  }

  /** Bytes retained of one kind, for the store's usage report. */
  bytesOf(kind: RetainedKind): number {
    return kind === "change" ? this.changes : kind === "record" ? this.records : this.deleted;
  }

  /** Queues `item` as the newest. */
  add(item: Item): void {
    if (item.queued) this.remove(item);
    item.older = this.newestItem;
    item.newer = undefined;
    if (this.newestItem === undefined) this.oldestItem = item;
    else this.newestItem.newer = item;
    this.newestItem = item;
    item.queued = true;
    this.count(item, item.bytes);
  }

  remove(item: Item): void {
    if (!item.queued) return;
    if (item.older === undefined) this.oldestItem = item.newer;
    else item.older.newer = item.newer;
    if (item.newer === undefined) this.newestItem = item.older;
    else item.newer.older = item.older;
    item.older = undefined;
    item.newer = undefined;
    item.queued = false;
    this.count(item, -item.bytes);
  }

  private count(item: Item, bytes: number): void {
    this.total += bytes;
    if (item.kind === "change") this.changes += bytes;
    else if (item.kind === "record") this.records += bytes;
    else this.deleted += bytes;
  }
}

/**
 * A session's latest changes in sequence order, without gap: appended at the newest end,
 * dropped only from the oldest, so the kept changes are always the ones after some sequence.
 */
export class ChangeLog<Item extends { readonly bytes: number }> {
  private items: (Item | undefined)[] = [];
  private head = 0;
  /** The sequence of items[head]. */
  private first = 1n;
  private total = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.total;
  }

  /** The sequence of the oldest change kept; the next one to be appended when none is. */
  get oldestSequence(): bigint {
    return this.first;
  }

  /** Appends the change of `sequence`; a gap before it (changes not kept) empties the log first. */
  push(sequence: bigint, item: Item): void {
    if (sequence !== this.first + BigInt(this.size)) {
      this.items = [];
      this.head = 0;
      this.total = 0;
      this.first = sequence;
    }
    this.items.push(item);
    this.total += item.bytes;
  }

  get(sequence: bigint): Item | undefined {
    if (sequence < this.first) return undefined;
    return this.items[this.head + Number(sequence - this.first)];
  }

  /** Drops the oldest change kept and returns it. */
  shift(): Item | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.items[this.head++] = undefined;
    this.first += 1n;
    this.total -= item.bytes;
    // Compact once the dropped slots are most of the array.
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Every change kept, oldest first. */
  *values(): IterableIterator<Item> {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (item !== undefined) yield item;
    }
  }
}

/** The parts of a memory store session that hold what it keeps beyond its live state. */
export interface Keeping {
  /** Encoded bytes of the session's variables. */
  readonly bytes: number;
  readonly variables: ReadonlyMap<string, unknown> | undefined;
  /** At least the last version of every name whose tombstone was dropped. */
  versionFloor: bigint;
  /** The latest changes for resuming watches, within watchHistory and the session's byte quota. */
  history: ChangeLog<KeptChange> | undefined;
  /** Outcomes of completed calls by request id, in completion order, and their bytes. */
  records: Map<string, CallRecord> | undefined;
  recordBytes: number;
  /** Last versions of deleted names, oldest first, so re-created names continue above them. */
  tombstones: Map<string, Tombstone> | undefined;
}

export type Kept = KeptChange | CallRecord | Tombstone;

export interface KeptChange extends Retained<Kept> {
  readonly kind: "change";
  readonly owner: Keeping;
  readonly change: VariableChange;
}

export interface CallRecord extends Retained<Kept> {
  readonly kind: "record";
  readonly owner: Keeping;
  readonly requestId: string;
  /** The fingerprint of the call that completed under `requestId` (tools/replay.ts). */
  readonly fingerprint: string;
  readonly outcome: Uint8Array;
  readonly at: number;
}

export interface Tombstone extends Retained<Kept> {
  readonly kind: "deleted";
  readonly owner: Keeping;
  readonly name: string;
  readonly version: bigint;
}

/** What a kept delete or deleted name counts beyond its name: its version and kind. */
const DELETED_BYTES = 16;

export interface RetentionLimits {
  /** Most changes a session keeps (watchHistory); 0 keeps none. */
  readonly historySize: number;
  /** Bytes a session's variables and history may take together (maxSessionVariableBytes). */
  readonly maxSessionBytes: number;
  /** Bytes the whole store may keep (maxTotalVariableBytes); 0: no such limit. */
  readonly maxTotalBytes: number;
  readonly records: Required<CallRecordLimits>;
}

/** What the memory store keeps beyond live state, for every session, within the limits. */
export class Retention {
  private readonly queue = new RetentionQueue<Kept>();

  constructor(private readonly limits: RetentionLimits) {}

  /** Bytes retained for every session. */
  get bytes(): number {
    return this.queue.bytes;
  }

  usage(): Pick<StoreUsage, "history" | "records" | "deleted"> {
    return {
      history: this.queue.bytesOf("change"),
      records: this.queue.bytesOf("record"),
      deleted: this.queue.bytesOf("deleted"),
    };
  }

  /** Keeps `change` for resuming watches, within watchHistory and what the session's variables leave of its quota. */
  keepChange(owner: Keeping, change: VariableChange): void {
    const { historySize, maxSessionBytes } = this.limits;
    if (historySize === 0) return;
    const { result } = change;
    const bytes = result.kind === "set" ? result.bytes : change.name.length + DELETED_BYTES;
    // Literals with every field, not spreads: V8 builds spread objects slowly (it doubled the cost of a small write).
    const kept: KeptChange = {
      kind: "change",
      bytes,
      older: undefined,
      newer: undefined,
      queued: false,
      owner,
      change,
    };
    owner.history ??= new ChangeLog();
    const history = owner.history;
    history.push(change.sequence, kept);
    this.queue.add(kept);
    const budget = maxSessionBytes - owner.bytes;
    while (history.size > historySize || (history.size > 0 && history.bytes > budget)) {
      const oldest = history.get(history.oldestSequence);
      if (oldest === undefined) break;
      this.forget(oldest);
    }
  }

  /** Remembers the last version of a deleted name; beyond MAX_TOMBSTONES the oldest folds into the floor. */
  keepTombstone(owner: Keeping, name: string, version: bigint): void {
    owner.tombstones ??= new Map();
    const tombstone: Tombstone = {
      kind: "deleted",
      bytes: name.length + DELETED_BYTES,
      older: undefined,
      newer: undefined,
      queued: false,
      owner,
      name,
      version,
    };
    owner.tombstones.set(name, tombstone);
    this.queue.add(tombstone);
    if (owner.tombstones.size > MAX_TOMBSTONES) {
      const oldest = owner.tombstones.values().next().value;
      if (oldest !== undefined) this.forget(oldest);
    }
  }

  /**
   * Records a call's outcome; the session's oldest go beyond maxRecords, maxBytes or the
   * window. One alone over maxBytes is not kept.
   */
  keepRecord(owner: Keeping, requestId: string, fingerprint: string, outcome: Uint8Array, now: number): void {
    owner.records ??= new Map();
    // Dropped first so that the Map stays in completion order (an expired record was claimed again).
    const expired = owner.records.get(requestId);
    if (expired !== undefined) this.forget(expired);
    const bytes = outcome.length + requestId.length + RECORD_OVERHEAD_BYTES;
    const { maxRecords, maxBytes, windowMs } = this.limits.records;
    // Larger than all the records may be: not kept, and nothing else is dropped for it.
    if (bytes > maxBytes) return;
    const record: CallRecord = {
      kind: "record",
      bytes,
      older: undefined,
      newer: undefined,
      queued: false,
      owner,
      requestId,
      fingerprint,
      outcome,
      at: now,
    };
    owner.records.set(requestId, record);
    owner.recordBytes += bytes;
    this.queue.add(record);
    for (const oldest of owner.records.values()) {
      const within = owner.records.size <= maxRecords && owner.recordBytes <= maxBytes;
      if (within && oldest.at > now - windowMs) break;
      this.forget(oldest);
    }
  }

  /**
   * Drops something a session kept: a change (always the session's oldest kept), a call
   * record, or a deleted name, whose guarantee then folds into the session's version floor.
   */
  forget(item: Kept): void {
    this.queue.remove(item);
    const { owner } = item;
    switch (item.kind) {
      case "change":
        owner.history?.shift();
        return;
      case "record":
        if (owner.records?.get(item.requestId) === item) owner.records.delete(item.requestId);
        owner.recordBytes -= item.bytes;
        return;
      case "deleted":
        if (owner.tombstones?.get(item.name) === item) owner.tombstones.delete(item.name);
        // A name created again has a version above its tombstone's already.
        if (owner.variables?.has(item.name) !== true && item.version > owner.versionFloor) {
          owner.versionFloor = item.version;
        }
        return;
    }
  }

  /** Drops the oldest history, records and deleted names of any session while the store is over its total. */
  fit(pinnedBytes: number): void {
    const { maxTotalBytes } = this.limits;
    if (maxTotalBytes <= 0) return;
    while (pinnedBytes + this.queue.bytes > maxTotalBytes) {
      const oldest = this.queue.oldest;
      if (oldest === undefined) return;
      this.forget(oldest);
    }
  }

  /** Drops everything a session kept: it has ended. */
  release(owner: Keeping): void {
    for (const kept of owner.history?.values() ?? []) this.queue.remove(kept);
    for (const record of owner.records?.values() ?? []) this.queue.remove(record);
    for (const tombstone of owner.tombstones?.values() ?? []) this.queue.remove(tombstone);
  }
}
