import { type pb, toPbTimestamp } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import type { SessionRecord } from "../sessions/session-table.js";
import { errorInfo } from "../tools/engine.js";
import type { RpcHost } from "./rpc-host.js";

export const CAPABILITIES = [
  "streaming",
  "tensors",
  "big_int",
  "timestamps",
  "batch",
  "metrics",
  "variables",
];

export async function initializeSession(
  host: RpcHost,
  req: pb.InitializeSessionRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.InitializeSessionResponse> {
  try {
    const { record, created } = await host.sessions.create(req.sessionId, req.metadata, principal);
    if (created) host.log.debug({ sessionId: record.id }, "session created");
    return {
      success: true,
      error: undefined,
      sessionId: record.id,
      toolCount: host.engine.tools.count(record.id),
      capabilities: CAPABILITIES,
      created,
    };
  } catch (error) {
    return {
      success: false,
      error: errorInfo(host, error),
      sessionId: req.sessionId,
      toolCount: 0,
      capabilities: [],
      created: false,
    };
  }
}

export async function cleanupSession(
  host: RpcHost,
  req: pb.CleanupSessionRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.StatusResponse> {
  try {
    await host.sessions.cleanup(req.sessionId, principal);
    return { success: true, error: undefined };
  } catch (error) {
    return { success: false, error: errorInfo(host, error) };
  }
}

export async function getSessionInfo(
  host: RpcHost,
  req: pb.GetSessionInfoRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.SessionInfoResponse> {
  try {
    const record = await host.sessions.peek(req.sessionId, principal);
    return { success: true, error: undefined, session: await sessionInfo(host, record) };
  } catch (error) {
    return { success: false, error: errorInfo(host, error), session: undefined };
  }
}

/** A session as GetSessionInfo and ListSessions describe it. */
export async function sessionInfo(host: RpcHost, record: SessionRecord): Promise<pb.SessionInfo> {
  return {
    sessionId: record.id,
    metadata: { ...record.metadata },
    createdAt: toPbTimestamp(record.createdAt),
    lastAccessedAt: toPbTimestamp(record.lastAccessedAt),
    expiresAt: toPbTimestamp(host.sessions.expiresAt(record)),
    toolCount: host.engine.tools.count(record.id),
    variableCount: await host.variables.count(record.id),
    owner: record.owner,
  };
}

export async function heartbeat(
  host: RpcHost,
  req: pb.HeartbeatRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.HeartbeatResponse> {
  try {
    const record = await host.sessions.require(req.sessionId, principal);
    return {
      success: true,
      error: undefined,
      expiresAt: toPbTimestamp(host.sessions.expiresAt(record)),
      serverTime: toPbTimestamp(Date.now()),
    };
  } catch (error) {
    return { success: false, error: errorInfo(host, error), expiresAt: undefined, serverTime: undefined };
  }
}
