/** Times as the pages show them: ages and remaining times in the largest fitting unit. */
import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";

export function msOf(timestamp: Timestamp | undefined): number | undefined {
  return timestamp === undefined ? undefined : timestampMs(timestamp);
}

/** 850 ms, 12 s, 4 min, 3 h, 2 d. */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(abs < 10_000 ? 1 : 0)} s`;
  if (abs < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (abs < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** "12 s ago", from a timestamp. */
export function ago(timestamp: Timestamp | undefined, now = Date.now()): string {
  const ms = msOf(timestamp);
  return ms === undefined ? "–" : `${duration(now - ms)} ago`;
}

/** "in 4 min", or "expired". */
export function until(timestamp: Timestamp | undefined, now = Date.now()): string {
  const ms = msOf(timestamp);
  if (ms === undefined) return "–";
  return ms <= now ? "expired" : `in ${duration(ms - now)}`;
}

export function clock(timestamp: Timestamp | undefined): string {
  const ms = msOf(timestamp);
  return ms === undefined ? "–" : new Date(ms).toLocaleTimeString();
}
