/**
 * ListTools: the specs of the tools a session sees: this node's, and with a shared store
 * the session tools other nodes serve (this node forwards their calls; one of its own tools
 * of the same name wins, as it answers the calls here).
 */
import { pb } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import { errorInfo, type HostRuntime } from "../runtime.js";
import { checkSession } from "../tools/call.js";

export async function listTools(
  rt: HostRuntime,
  req: pb.ListToolsRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.ListToolsResponse> {
  try {
    await checkSession(rt, req.sessionId, principal);
    const tools = rt.tools
      .list(req.sessionId)
      .map(({ tool, sessionScoped }) =>
        tool.spec(sessionScoped ? pb.ToolScope.TOOL_SCOPE_SESSION : pb.ToolScope.TOOL_SCOPE_GLOBAL),
      );
    if (rt.forwarder !== undefined) {
      const own = new Set(tools.map((spec) => spec.name));
      for (const remote of await rt.forwarder.list(req.sessionId)) {
        if (!own.has(remote.name)) tools.push(remote.spec);
      }
    }
    return { success: true, error: undefined, tools };
  } catch (error) {
    return { success: false, error: errorInfo(rt, error), tools: [] };
  }
}
