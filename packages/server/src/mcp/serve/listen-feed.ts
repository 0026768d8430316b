/**
 * Resource updates for 2026-07-28 clients. Such a client names the resources it wants to
 * hear about in a `subscriptions/listen` request, whose response stream the SDK keeps open
 * and fills from an event bus; this feed watches each named variable (once, however many
 * streams listen to it) and publishes its updates on that bus while a stream needs it.
 */
import type { Principal } from "../../auth/principal.js";
import type { McpEngine } from "../engine.js";
import { checkResourceAccess, watchVariableResource } from "./resources.js";

interface Watched {
  listeners: number;
  stop: () => void;
}

export class ListenFeed {
  private readonly watched = new Map<string, Watched>();

  constructor(
    private readonly engine: McpEngine,
    private readonly publish: (uri: string) => void,
  ) {}

  /**
   * Watches `uris` for a listen stream of `principal`; resolves with the release to call
   * when the stream ends. Rejects (ResourceNotFound) when one of them is not the principal's
   * to read; nothing is watched then.
   */
  async listen(principal: Principal, uris: readonly string[]): Promise<() => void> {
    const taken: string[] = [];
    try {
      for (const uri of new Set(uris)) {
        await this.acquire(principal, uri);
        taken.push(uri);
      }
    } catch (error) {
      for (const uri of taken) this.release(uri);
      throw error;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const uri of taken) this.release(uri);
    };
  }

  private async acquire(principal: Principal, uri: string): Promise<void> {
    const existing = this.watched.get(uri);
    if (existing !== undefined) {
      // Another stream watches it already; this one must still be allowed to read it.
      await checkResourceAccess(this.engine, principal, uri);
      existing.listeners++;
      return;
    }
    const entry: Watched = { listeners: 1, stop: () => {} };
    this.watched.set(uri, entry);
    try {
      entry.stop = await watchVariableResource(this.engine, principal, uri, () => this.publish(uri));
    } catch (error) {
      this.watched.delete(uri);
      throw error;
    }
  }

  private release(uri: string): void {
    const entry = this.watched.get(uri);
    if (entry === undefined) return;
    entry.listeners--;
    if (entry.listeners > 0) return;
    this.watched.delete(uri);
    entry.stop();
  }

  /** Stops every watch (the endpoint is closing). */
  close(): void {
    for (const entry of this.watched.values()) entry.stop();
    this.watched.clear();
  }
}
