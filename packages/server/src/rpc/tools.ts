/**
 * ListTools: the specs of the tools a session sees: this node's, and with a shared store
 * the session tools other nodes serve (this node forwards their calls; one of its own tools
 * of the same name wins, as it answers the calls here).
 */
import type { pb } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import { errorInfo } from "../tools/engine.js";
import type { RpcHost } from "./rpc-host.js";

export async function listTools(
  host: RpcHost,
  req: pb.ListToolsRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.ListToolsResponse> {
  try {
    return { success: true, error: undefined, tools: await host.engine.listTools(req.sessionId, principal) };
  } catch (error) {
    return { success: false, error: errorInfo(host, error), tools: [] };
  }
}
