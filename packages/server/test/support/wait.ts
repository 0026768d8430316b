/**
 * Waiting on a condition a test cannot be told about directly, within a bound: the one poll
 * of the TypeScript tests (the client's tests use it too).
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

export interface WaitBound {
  /** How many times to check (500 by default). */
  readonly tries?: number;
  /** The pause between two checks (20 ms by default). */
  readonly intervalMs?: number;
  /** What the test saw, added to the failure's message (a process's output, say). */
  readonly explain?: () => string;
}

/**
 * Checks `check` every `intervalMs` until it holds; fails naming `what` after `tries` checks
 * (a bound that keeps a regression from hanging the suite, not a timing claim).
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  { tries = 500, intervalMs = 20, explain }: WaitBound = {},
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  const seen = explain === undefined ? "" : `\n${explain()}`;
  assert.fail(`gave up waiting (${tries} checks ${intervalMs} ms apart): ${what}${seen}`);
}
