/** Racing writers over the wire, for the tests that check optimistic concurrency. */
import { BridgeError, ErrorType, type ToolBridgeClient } from "@toolbridge/client";

/**
 * Each client increments the integer variable `name` `times` times with read-modify-write
 * and expectedVersion, retrying on VersionConflict, all at once. Resolves with the number
 * of conflicts met (0 only if scheduling happened to serialize them).
 */
export async function incrementRace(
  name: string,
  writers: readonly (readonly [ToolBridgeClient, number])[],
): Promise<number> {
  let conflicts = 0;
  const increment = async (client: ToolBridgeClient, times: number) => {
    for (let done = 0; done < times; ) {
      const current = await client.getVariable(name);
      try {
        await client.setVariable(name, (current.value as number) + 1, { expectedVersion: current.version });
        done++;
      } catch (error) {
        if (!(error instanceof BridgeError && error.type === ErrorType.VersionConflict)) throw error;
        conflicts++;
      }
    }
  };
  await Promise.all(writers.map(([client, times]) => increment(client, times)));
  return conflicts;
}
