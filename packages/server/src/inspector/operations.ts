/**
 * The operations RPCs of toolbridge.proto: ListSessions, ListRecentCalls, GetToolStats and
 * DescribeHost. They run inside the ToolBridge service like every other RPC (rpc/service.ts:
 * authentication, draining, malformed requests), and authorize by the one rule of
 * sessions: a principal sees the sessions it may use (its own; every one with the operator
 * role), and the calls made in them.
 */
import { BridgeError, ErrorType, type pb, toPbTimestamp } from "@toolbridge/core";
import { type Principal, seesEverySession } from "../auth/principal.js";
import type { RpcHost } from "../rpc/rpc-host.js";
import { sessionInfo } from "../rpc/sessions.js";
import { errorInfo } from "../tools/engine.js";
import { callRecord, type LoggedCall } from "./call-log.js";

/** Page size of ListSessions and ListRecentCalls when the request gives none, and the most allowed. */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

function pageSize(requested: number, field: string): number {
  if (requested === 0) return DEFAULT_PAGE;
  if (requested > MAX_PAGE) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `${field} is ${requested}; ask for at most ${MAX_PAGE}`,
      {
        details: { field },
      },
    );
  }
  return requested;
}

export async function listSessions(
  host: RpcHost,
  req: pb.ListSessionsRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.ListSessionsResponse> {
  try {
    const limit = pageSize(req.pageSize, "page_size");
    const everyOwner = seesEverySession(principal);
    // Another principal's sessions do not exist for this caller: an empty page, as for an owner with none.
    if (!everyOwner && req.owner !== "" && req.owner !== principal.name) {
      return { success: true, error: undefined, sessions: [], nextPageToken: "" };
    }
    const owner = everyOwner ? req.owner || undefined : principal.name;
    const page = await host.sessions.list({ after: req.pageToken, limit, owner });
    const sessions = await Promise.all(page.sessions.map((record) => sessionInfo(host, record)));
    const last = page.sessions.at(-1);
    return {
      success: true,
      error: undefined,
      sessions,
      nextPageToken: page.more && last !== undefined ? last.id : "",
    };
  } catch (error) {
    return { success: false, error: errorInfo(host, error), sessions: [], nextPageToken: "" };
  }
}

export async function listRecentCalls(
  host: RpcHost,
  req: pb.ListRecentCallsRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.ListRecentCallsResponse> {
  const { recentCalls } = host.operations;
  try {
    const limit = pageSize(req.limit, "limit");
    const after = Number(req.afterSequence > BigInt(recentCalls.last) ? 0n : req.afterSequence);
    let calls = recentCalls.after(after);
    if (req.sessionId !== "") calls = calls.filter((call) => call.sessionId === req.sessionId);
    if (!seesEverySession(principal)) calls = await visibleTo(host, principal, calls);
    return {
      success: true,
      error: undefined,
      calls: calls.slice(-limit).map(callRecord),
      lastSequence: BigInt(recentCalls.last),
    };
  } catch (error) {
    return { success: false, error: errorInfo(host, error), calls: [], lastSequence: 0n };
  }
}

/**
 * The calls `principal` may see: those it made, and those made in a live session it may
 * use (a host's own agents call tools in their users' sessions).
 */
async function visibleTo(host: RpcHost, principal: Principal, calls: LoggedCall[]): Promise<LoggedCall[]> {
  const others = new Set(calls.filter((call) => call.principal !== principal.name).map((c) => c.sessionId));
  const usable = new Set<string>();
  await Promise.all(
    [...others].map(async (sessionId) => {
      if (await host.sessions.usableBy(sessionId, principal)) usable.add(sessionId);
    }),
  );
  return calls.filter((call) => call.principal === principal.name || usable.has(call.sessionId));
}

export async function getToolStats(
  host: RpcHost,
  _req: pb.GetToolStatsRequest,
): Promise<pb.GetToolStatsResponse> {
  return host.operations.toolActivity.snapshot();
}

export async function describeHost(
  host: RpcHost,
  _req: pb.DescribeHostRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.DescribeHostResponse> {
  const view = host.operations;
  const pool = view.workers();
  let storeError = "";
  const [activeSessions, nodes] = await Promise.all([
    host.sessions.count(),
    view.nodes().then((entries) => [...entries]),
  ]).catch((error: unknown): [number, []] => {
    storeError = error instanceof Error ? error.message : String(error);
    return [0, []];
  });
  return {
    version: host.version,
    uptimeMs: Date.now() - host.startedAt,
    nodeId: view.nodeId ?? "",
    store: view.store,
    tls: view.tls,
    authentication: host.auth.enabled,
    principal: principal.name,
    operator: seesEverySession(principal),
    activeSessions,
    health: host.health.services.map((service) => ({ service, serving: host.health.serving(service) })),
    workerPoolSize: pool?.size ?? 0,
    workerRestarts: pool?.restarts ?? 0,
    workers: (pool?.workers ?? []).map((worker) => ({
      name: worker.name,
      pid: worker.pid,
      state: worker.state,
      load: worker.load,
      requests: BigInt(worker.requests),
      startedAt: toPbTimestamp(worker.startedAt.getTime()),
      rssBytes: BigInt(worker.rssBytes),
      agentsReady: worker.agentsReady,
    })),
    nodes: nodes.map(([nodeId, entry]) => ({
      nodeId,
      address: entry.address,
      tls: entry.tls,
      self: nodeId === view.nodeId,
    })),
    storeError,
  };
}
