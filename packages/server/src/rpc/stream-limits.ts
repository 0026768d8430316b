/**
 * Server streams open at once (variable watches and StreamTool calls), per session and per
 * authenticated principal. Each stream holds buffers and a slot of the host's sockets, so
 * the counts are per host: they protect the node the streams are open on.
 */
import { BridgeError, ErrorType } from "@toolbridge/core";
import { hasQuotas, type Principal } from "../auth/principal.js";

export interface StreamLimitSettings {
  /** Streams open on one session at once. */
  readonly maxStreamsPerSession: number;
  /** Streams one authenticated principal may have open at once; 0: no such limit. */
  readonly maxStreamsPerPrincipal: number;
}

function increment(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next > 0) counts.set(key, next);
  else counts.delete(key);
}

export class StreamLimits {
  private readonly perSession = new Map<string, number>();
  private readonly perPrincipal = new Map<string, number>();

  constructor(private readonly settings: StreamLimitSettings) {}

  /**
   * Counts a stream on `sessionId` by `principal` and returns its release (extra calls are
   * ignored); throws ResourceExhausted naming the limit when one is reached.
   */
  open(sessionId: string, principal: Principal): () => void {
    const { maxStreamsPerSession, maxStreamsPerPrincipal } = this.settings;
    const onSession = this.perSession.get(sessionId) ?? 0;
    if (onSession >= maxStreamsPerSession) {
      throw new BridgeError(
        ErrorType.ResourceExhausted,
        `session '${sessionId.slice(0, 200)}' already has ${onSession} streams open on this host, its limit ` +
          "(maxStreamsPerSession); close watches and streams you no longer read",
        { details: { quota: "maxStreamsPerSession", limit: String(maxStreamsPerSession) } },
      );
    }
    const counted = hasQuotas(principal) && maxStreamsPerPrincipal > 0;
    if (counted) {
      const mine = this.perPrincipal.get(principal.name) ?? 0;
      if (mine >= maxStreamsPerPrincipal) {
        throw new BridgeError(
          ErrorType.ResourceExhausted,
          `principal '${principal.name.slice(0, 100)}' already has ${mine} streams open on this host, its ` +
            "limit (maxStreamsPerPrincipal); close watches and streams you no longer read",
          { details: { quota: "maxStreamsPerPrincipal", limit: String(maxStreamsPerPrincipal) } },
        );
      }
      increment(this.perPrincipal, principal.name, 1);
    }
    increment(this.perSession, sessionId, 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      increment(this.perSession, sessionId, -1);
      if (counted) increment(this.perPrincipal, principal.name, -1);
    };
  }
}
