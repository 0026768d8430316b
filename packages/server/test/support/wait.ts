/** Waiting on a condition a test cannot be told about directly, within a bound. */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Checks `check` every `intervalMs` until it holds; fails naming `what` after `tries` checks
 * (a bound that keeps a regression from hanging the suite, not a timing claim).
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  { tries = 500, intervalMs = 20 }: { tries?: number; intervalMs?: number } = {},
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  assert.fail(`gave up waiting (${tries} checks ${intervalMs} ms apart): ${what}`);
}
