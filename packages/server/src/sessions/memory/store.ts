/**
 * The embedded session store: every part keeps its data in this process, in one entry per
 * session (state.ts), so sessions end with the process. It has no shared parts: rate
 * limits, tools and calls all stay with this host.
 */
import type { SessionStoreOptions } from "../options.js";
import type { SessionStore, StoreUsage } from "../store.js";
import { MemoryCallRecordStore } from "./call-records.js";
import { MemorySessionTable } from "./session-table.js";
import { MemorySessionState } from "./state.js";
import { MemoryVariableStore } from "./variable-store.js";

export class InMemorySessionStore implements SessionStore {
  readonly sessions: MemorySessionTable;
  readonly variables: MemoryVariableStore;
  readonly callRecords: MemoryCallRecordStore;
  private readonly state: MemorySessionState;

  constructor(options: SessionStoreOptions) {
    this.state = new MemorySessionState(options);
    this.sessions = new MemorySessionTable(this.state);
    this.variables = new MemoryVariableStore(this.state);
    this.callRecords = new MemoryCallRecordStore(this.state);
  }

  usage(): StoreUsage {
    return this.state.usage();
  }

  /** Ends every session (reason "shutdown"). */
  async close(): Promise<void> {
    for (const id of [...this.state.entries.keys()]) {
      await this.sessions.delete(id, "shutdown");
    }
  }
}
