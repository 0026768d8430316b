import { type pb, toPbTimestamp } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import { errorInfo, type HostRuntime } from "../runtime.js";
import type { SessionRecord } from "../sessions/session-table.js";

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
  rt: HostRuntime,
  req: pb.InitializeSessionRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.InitializeSessionResponse> {
  try {
    const { record, created } = await rt.sessions.create(req.sessionId, req.metadata, principal);
    if (created) rt.log.debug({ sessionId: record.id }, "session created");
    return {
      success: true,
      error: undefined,
      sessionId: record.id,
      toolCount: rt.tools.count(record.id),
      capabilities: CAPABILITIES,
      created,
    };
  } catch (error) {
    return {
      success: false,
      error: errorInfo(rt, error),
      sessionId: req.sessionId,
      toolCount: 0,
      capabilities: [],
      created: false,
    };
  }
}

export async function cleanupSession(
  rt: HostRuntime,
  req: pb.CleanupSessionRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.StatusResponse> {
  try {
    await rt.sessions.cleanup(req.sessionId, principal);
    return { success: true, error: undefined };
  } catch (error) {
    return { success: false, error: errorInfo(rt, error) };
  }
}

export async function getSessionInfo(
  rt: HostRuntime,
  req: pb.GetSessionInfoRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.SessionInfoResponse> {
  try {
    const record = await rt.sessions.peek(req.sessionId, principal);
    return { success: true, error: undefined, session: await sessionInfo(rt, record) };
  } catch (error) {
    return { success: false, error: errorInfo(rt, error), session: undefined };
  }
}

/** A session as GetSessionInfo and ListSessions describe it. */
export async function sessionInfo(rt: HostRuntime, record: SessionRecord): Promise<pb.SessionInfo> {
  return {
    sessionId: record.id,
    metadata: { ...record.metadata },
    createdAt: toPbTimestamp(record.createdAt),
    lastAccessedAt: toPbTimestamp(record.lastAccessedAt),
    expiresAt: toPbTimestamp(rt.sessions.expiresAt(record)),
    toolCount: rt.tools.count(record.id),
    variableCount: await rt.variables.count(record.id),
    owner: record.owner,
  };
}

export async function heartbeat(
  rt: HostRuntime,
  req: pb.HeartbeatRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.HeartbeatResponse> {
  try {
    const record = await rt.sessions.require(req.sessionId, principal);
    return {
      success: true,
      error: undefined,
      expiresAt: toPbTimestamp(rt.sessions.expiresAt(record)),
      serverTime: toPbTimestamp(Date.now()),
    };
  } catch (error) {
    return { success: false, error: errorInfo(rt, error), expiresAt: undefined, serverTime: undefined };
  }
}
