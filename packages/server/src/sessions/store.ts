/**
 * SessionStore: where sessions and everything kept in them live, as parts with one job
 * each, behind their own interfaces: the sessions (SessionTable), their variables and
 * change feed (VariableStore), the call records of replay (CallRecordStore), and, only in a
 * store several host nodes share, the rate slots of global tools (RateSlots), the node
 * directory (NodeDirectory) and the per-session tool directory (SessionToolDirectory).
 *
 * Two stores come with the host: InMemorySessionStore (sessions/memory/), the embedded
 * default, and RedisSessionStore (sessions/redis/), which several host nodes share.
 * createSessionStore (sessions/factory.ts) makes the one a configuration names; an
 * application passes its own as HostOptions.store.
 */
import type { CallRecordStore } from "./call-records.js";
import type { NodeDirectory } from "./node-directory.js";
import type { RateSlots } from "./rate-slots.js";
import type { SessionTable } from "./session-table.js";
import type { SessionToolDirectory } from "./session-tools.js";
import type { VariableStore } from "./variable-store.js";

/**
 * What a store that keeps sessions in this process holds for all of them, in encoded bytes
 * (SessionStore.usage): the quantities maxTotalVariableBytes bounds.
 */
export interface StoreUsage {
  /** Session ids and metadata. */
  readonly sessions: number;
  readonly variables: number;
  /** Changes kept for resuming watches. */
  readonly history: number;
  /** Call outcomes kept for replay. */
  readonly records: number;
  /** Names of deleted variables with their last versions. */
  readonly deleted: number;
}

/**
 * The parts of one session store. Every part keeps its data inside a session (the tool
 * directories aside), and a session that ends takes it along in every part.
 */
export interface SessionStore {
  readonly sessions: SessionTable;
  readonly variables: VariableStore;
  readonly callRecords: CallRecordStore;
  /**
   * With a store several nodes share, all three of these: rate limits counted for every
   * node, the node directory, and the session tools each node serves. A store of this
   * process only has none of them.
   */
  readonly rateSlots?: RateSlots;
  readonly nodes?: NodeDirectory;
  readonly sessionTools?: SessionToolDirectory;
  /**
   * Checks, before the host serves, that the store can work as configured; throws
   * BridgeError(ValidationError) naming what to change when it cannot. Optional.
   */
  verify?(): Promise<void>;
  /** What the store keeps in this process, for a store that keeps sessions here (metrics). */
  usage?(): StoreUsage;
  /** Ends the store's work in this process: a store of this process ends every session ("shutdown"). */
  close(): Promise<void>;
}
