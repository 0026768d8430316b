/**
 * The agents and runs of a client's session: the records Python workers write
 * (toolbridge.agent), read and written with the same store as the host's.
 *
 *   const agents = new SessionVariableAgentStore(client);
 *   const run = await agents.loadRun(runId);
 */
import {
  type AgentRecordVariables,
  type SetVariableOptions,
  type Variable,
  SessionVariableAgentStore as VariablesAgentStore,
} from "@toolbridge/core";
import type { ToolBridgeClient } from "./client.js";

/**
 * Agents and runs in the session of `client` (its current session, once `initializeSession`
 * succeeded): the same methods and records as the host's `SessionVariableAgentStore` and
 * Python's `toolbridge.agent.SessionVariableAgentStore`.
 */
export class SessionVariableAgentStore extends VariablesAgentStore {
  constructor(client: ToolBridgeClient) {
    super(new ClientVariables(client));
  }
}

/** A client's session variables as the store uses them. */
class ClientVariables implements AgentRecordVariables {
  constructor(private readonly client: ToolBridgeClient) {}

  get sessionId(): string {
    return this.client.sessionId ?? "(no session)";
  }

  get(name: string): Promise<Variable> {
    return this.client.getVariable(name);
  }

  set(name: string, value: unknown, options: SetVariableOptions): Promise<unknown> {
    return this.client.setVariable(name, value, options);
  }

  list(options: { prefix: string }): Promise<Variable[]> {
    return this.client.listVariables(options);
  }
}
