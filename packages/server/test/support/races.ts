/** Racing writers over the wire, for the tests that check optimistic concurrency. */
import assert from "node:assert/strict";
import { BridgeError, ErrorType, type ToolBridgeClient } from "@toolbridge/client";

/**
 * Each client increments the integer variable `name` `times` times with read-modify-write
 * and expectedVersion, racing the others in rounds: every writer still at work reads the
 * variable, and only when all have read (a barrier) do they all write at once. So every round
 * with two writers or more is a race on one version: exactly one write commits and the others
 * meet VersionConflict and try again in the next round (asserted). Resolves with the number
 * of conflicts.
 */
export async function incrementRace(
  name: string,
  writers: readonly (readonly [ToolBridgeClient, number])[],
): Promise<number> {
  let conflicts = 0;
  const left = writers.map(([, times]) => times);
  for (let round = 0; left.some((n) => n > 0); round++) {
    const racing = writers.flatMap(([client], i) => ((left[i] ?? 0) > 0 ? [{ client, i }] : []));
    const read = await Promise.all(racing.map(({ client }) => client.getVariable(name)));
    const written = await Promise.allSettled(
      racing.map(({ client }, k) => {
        const current = read[k];
        assert.ok(current !== undefined);
        return client.setVariable(name, (current.value as number) + 1, { expectedVersion: current.version });
      }),
    );
    written.forEach((result, k) => {
      if (result.status === "fulfilled") {
        const { i } = racing[k] ?? { i: -1 };
        left[i] = (left[i] ?? 0) - 1;
      } else if (result.reason instanceof BridgeError && result.reason.type === ErrorType.VersionConflict) {
        conflicts++;
      } else {
        throw result.reason;
      }
    });
    const committed = written.filter((result) => result.status === "fulfilled").length;
    assert.equal(
      committed,
      1,
      `round ${round}: ${committed} of ${racing.length} writes of one version committed`,
    );
  }
  return conflicts;
}
