/** Assertions the tests of every package share. */
import assert from "node:assert/strict";
import { BridgeError } from "@toolbridge/core";

/**
 * A predicate for assert.rejects / assert.throws: the error is a BridgeError of `type`
 * and passes `check` (e.g. on its details); otherwise it fails with what it got instead.
 */
export function fails(type: string, check: (e: BridgeError) => boolean = () => true) {
  return (error: unknown) => {
    assert.ok(error instanceof BridgeError, `expected BridgeError, got ${String(error)}`);
    assert.equal(error.type, type, error.message);
    assert.ok(check(error), `unexpected error: ${error.message} ${JSON.stringify(error.details)}`);
    return true;
  };
}
