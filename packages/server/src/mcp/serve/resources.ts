/**
 * A session's variables as MCP resources: `toolbridge://sessions/<session>/variables/<name>`,
 * read as JSON and, for a subscriber, announced as updated whenever a write or delete
 * commits (through any client or node). Only the session's owner (or the host) reaches
 * them: every read and subscription goes through the session check.
 */

import type { ReadResourceResult, Resource, ResourceTemplateType } from "@modelcontextprotocol/server";
import { ProtocolError, ProtocolErrorCode, ResourceNotFoundError } from "@modelcontextprotocol/server";
import { BridgeError, ErrorType, fromPbTimestamp, type pb } from "@toolbridge/core";
import type { Principal } from "../../auth/principal.js";
import type { McpEngine } from "../engine.js";
import { textOf, valueToJson } from "../json.js";

const SCHEME = "toolbridge://sessions/";
const URI = /^toolbridge:\/\/sessions\/([^/]+)\/variables\/([^/]+)$/;

export const VARIABLE_TEMPLATE: ResourceTemplateType = {
  uriTemplate: `${SCHEME}{session}/variables/{name}`,
  name: "session-variable",
  title: "A toolbridge session variable",
  description: "A variable of a toolbridge session, as JSON; subscribe to hear when it changes.",
  mimeType: "application/json",
};

/** The resource URI of a variable. */
export function variableUri(sessionId: string, name: string): string {
  return `${SCHEME}${sessionId}/variables/${name}`;
}

/** The session and variable a URI names; ResourceNotFound when it names none. */
export function parseVariableUri(uri: string): { sessionId: string; name: string } {
  const match = URI.exec(uri);
  if (match === null) {
    throw new ResourceNotFoundError(
      uri,
      `no resource ${JSON.stringify(uri.slice(0, 200))}: this server's resources are ${VARIABLE_TEMPLATE.uriTemplate}`,
    );
  }
  return { sessionId: match[1] as string, name: match[2] as string };
}

/** The variables of the scope's session as resources; none outside a session. */
export async function listVariableResources(
  engine: McpEngine,
  principal: Principal,
  sessionId: string,
): Promise<Resource[]> {
  if (sessionId === "") return [];
  const variables = await orNotFound(engine.variables.list(sessionId, "", principal), "");
  return variables.map((variable) => ({
    uri: variableUri(sessionId, variable.name),
    name: variable.name,
    description: describe(variable),
    mimeType: "application/json",
  }));
}

/** A variable's value as JSON text, with its version and metadata in `_meta`. */
export async function readVariableResource(
  engine: McpEngine,
  principal: Principal,
  uri: string,
): Promise<ReadResourceResult> {
  const { sessionId, name } = parseVariableUri(uri);
  const variable = await orNotFound(engine.variables.get(sessionId, name, principal), uri);
  const meta = variable.metadata;
  return {
    contents: [
      {
        uri,
        mimeType: "application/json",
        text: variable.value === undefined ? "null" : textOfJson(valueToJson(variable.value)),
        _meta: {
          version: Number(variable.version),
          type: meta?.type ?? "",
          updatedBy: meta?.updatedBy ?? "",
          updatedAt: fromPbTimestamp(meta?.updatedAt).toISOString(),
        },
      },
    ],
  };
}

/** JSON text even for a string (a resource's text is JSON, unlike a tool result's). */
function textOfJson(json: ReturnType<typeof valueToJson>): string {
  return typeof json === "string" ? JSON.stringify(json) : textOf(json);
}

function describe(variable: pb.Variable): string {
  const type = variable.metadata?.type ?? "";
  return `session variable${type === "" ? "" : ` of type ${type}`}, version ${variable.version}`;
}

/**
 * Watches the variable `uri` names as `principal` and calls `onUpdate` after each committed
 * write or delete, until the returned function is called (or the session ends). Counts as a
 * stream against the host's limits. Rejects with ResourceNotFound for a session the
 * principal cannot use.
 */
export async function watchVariableResource(
  engine: McpEngine,
  principal: Principal,
  uri: string,
  onUpdate: () => void,
): Promise<() => void> {
  const { sessionId, name } = await checkResourceAccess(engine, principal, uri);
  let release: () => void;
  try {
    release = engine.openStream(sessionId, principal);
  } catch (error) {
    throw new ProtocolError(ProtocolErrorCode.InternalError, (error as Error).message);
  }
  const watch = engine.variables.watch(sessionId, { names: [name], includeInitialValues: false }, principal);
  const pump = async () => {
    for (let event = await watch.next(); event !== undefined; event = await watch.next()) {
      if (event.kind === "set" || event.kind === "deleted") onUpdate();
      else if (event.kind === "session_ended" || event.kind === "error") break;
    }
  };
  pump()
    .catch((error: unknown) => engine.log.warn({ err: error, uri }, "a resource subscription failed"))
    .finally(() => {
      watch.close();
      release();
    });
  return () => watch.close();
}

/**
 * The session and variable `uri` names, once the session is found to be `principal`'s to
 * use; ResourceNotFound otherwise (the variable itself need not exist yet).
 */
export async function checkResourceAccess(
  engine: McpEngine,
  principal: Principal,
  uri: string,
): Promise<{ sessionId: string; name: string }> {
  const named = parseVariableUri(uri);
  await orNotFound(engine.checkSession(named.sessionId, principal), uri);
  return named;
}

/**
 * SessionNotFound and VariableNotFound as MCP's resource-not-found error for `uri` (a
 * listing's: a plain ProtocolError); other failures as they are.
 */
async function orNotFound<T>(work: Promise<T>, uri: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (
      error instanceof BridgeError &&
      (error.type === ErrorType.SessionNotFound || error.type === ErrorType.VariableNotFound)
    ) {
      const message = `${error.type}: ${error.message}`;
      throw uri === ""
        ? new ProtocolError(ProtocolErrorCode.InvalidRequest, message)
        : new ResourceNotFoundError(uri, message);
    }
    throw error;
  }
}
