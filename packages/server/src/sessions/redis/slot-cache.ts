/**
 * The variable slots a node of the Redis store last committed, so that its next write
 * of the same variable can be computed without reading it first. An entry is only a
 * guess: the commit checks it against Redis (version and session incarnation). Bounded
 * by the encoded size of the variables it holds; the least recently used sessions go first.
 */
import type { VariableSlot } from "../variable-store.js";

export interface CachedSlot {
  readonly slot: VariableSlot;
  /** Which creation of the session the slot belongs to (a session id can be reused). */
  readonly incarnation: string;
}

interface Entry {
  readonly cached: CachedSlot;
  readonly bytes: number;
}

const DEFAULT_BUDGET_BYTES = 16 * 1024 * 1024;

export class SlotCache {
  /** Session id -> name -> entry; Map order is least recently used first. */
  private readonly sessions = new Map<string, Map<string, Entry>>();
  private bytes = 0;

  constructor(private readonly budgetBytes = DEFAULT_BUDGET_BYTES) {}

  get(sessionId: string, name: string): CachedSlot | undefined {
    const names = this.sessions.get(sessionId);
    const entry = names?.get(name);
    if (names === undefined || entry === undefined) return undefined;
    this.sessions.delete(sessionId);
    this.sessions.set(sessionId, names);
    return entry.cached;
  }

  set(sessionId: string, name: string, cached: CachedSlot, bytes: number): void {
    if (bytes > this.budgetBytes / 16) {
      this.delete(sessionId, name);
      return;
    }
    let names = this.sessions.get(sessionId);
    if (names === undefined) {
      names = new Map();
      this.sessions.set(sessionId, names);
    }
    this.bytes += bytes - (names.get(name)?.bytes ?? 0);
    names.set(name, { cached, bytes });
    for (const [id, evicted] of this.sessions) {
      if (this.bytes <= this.budgetBytes || id === sessionId) break;
      this.dropSession(id, evicted);
    }
  }

  delete(sessionId: string, name: string): void {
    const names = this.sessions.get(sessionId);
    const entry = names?.get(name);
    if (names === undefined || entry === undefined) return;
    names.delete(name);
    this.bytes -= entry.bytes;
    if (names.size === 0) this.sessions.delete(sessionId);
  }

  dropSession(sessionId: string, names = this.sessions.get(sessionId)): void {
    if (names === undefined) return;
    for (const entry of names.values()) this.bytes -= entry.bytes;
    this.sessions.delete(sessionId);
  }

  clear(): void {
    this.sessions.clear();
    this.bytes = 0;
  }
}
