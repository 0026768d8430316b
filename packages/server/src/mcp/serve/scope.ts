import type { Principal } from "../../auth/principal.js";

/**
 * Whom one MCP server instance serves, and where: a principal, in a toolbridge session or
 * (session "") with the global tools only.
 */
export interface Scope {
  readonly principal: Principal;
  /** The toolbridge session the client works in; "" for the global tools. */
  readonly sessionId: string;
}
