/**
 * RateSlots: the part of a store several host nodes share that counts the starts of a
 * rate-limited global tool for all of them, so that `rateLimitPerMinute` holds for the
 * nodes together (docs/stores.md). A store of one process has none: each tool then counts
 * its own starts (tools/limits.ts).
 */
export interface RateSlots {
  /** Counts a start of `tool` against `limit` per minute: 0 when admitted, else ms until a slot frees. */
  take(tool: string, limit: number): Promise<number>;
}
