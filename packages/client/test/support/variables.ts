/** What the client tests of session variables share: a connected client, a watch read to a count. */
import { ToolBridgeClient, type VariableUpdate, type VariableWatcher } from "@toolbridge/client";
import type { HostProcess } from "../../../server/test/support/host-process.js";

/** A client of `host` in a new session, or in `sessionId` when given. */
export async function connect(
  host: HostProcess,
  sessionId = "",
  options: ConstructorParameters<typeof ToolBridgeClient>[1] = {},
): Promise<ToolBridgeClient> {
  const client = new ToolBridgeClient(host.target, options);
  await client.initializeSession(sessionId);
  return client;
}

/** Reads a watch until `count` updates arrived (or it ended). */
export async function take(watch: VariableWatcher, count: number): Promise<VariableUpdate[]> {
  const out: VariableUpdate[] = [];
  if (count === 0) return out;
  for await (const update of watch) {
    out.push(update);
    if (out.length >= count) break;
  }
  return out;
}
