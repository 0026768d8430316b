/** The session-variable RPCs: Get/Set/List/DeleteSessionVariable and WatchSessionVariables. */
import * as grpc from "@grpc/grpc-js";
import { asBuffer, BridgeError, ErrorType, pb } from "@toolbridge/core";
import type { StreamCredentials } from "../auth/open-streams.js";
import type { Principal } from "../auth/principal.js";
import { errorInfo } from "../tools/engine.js";
import type { WatchEvent } from "../variables/watch.js";
import type { RpcHost } from "./rpc-host.js";
import { writable } from "./writable.js";

export async function getSessionVariable(
  host: RpcHost,
  req: pb.GetVariableRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.VariableResponse> {
  try {
    const variable = await host.variables.get(req.sessionId, req.variableName, principal);
    return {
      exists: true,
      value: variable.value,
      metadata: req.includeMetadata ? variable.metadata : undefined,
      version: variable.version,
      error: undefined,
    };
  } catch (error) {
    return {
      exists: false,
      value: undefined,
      metadata: undefined,
      version: 0n,
      error: errorInfo(host, error),
    };
  }
}

export async function setSessionVariable(
  host: RpcHost,
  req: pb.SetVariableRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.SetVariableResponse> {
  try {
    const variable = await host.variables.set(
      req.sessionId,
      {
        name: req.variableName,
        value: req.value,
        type: req.metadata?.type ?? "",
        constraints: req.metadata?.constraints,
        writer: req.metadata?.createdBy ?? "",
        tags: req.metadata?.tags ?? {},
        createIfMissing: req.createIfMissing,
        expectedVersion: req.expectedVersion,
      },
      principal,
    );
    host.log.debug(
      { sessionId: req.sessionId, variable: req.variableName, version: String(variable.version) },
      "variable set",
    );
    return { success: true, error: undefined, version: variable.version, metadata: variable.metadata };
  } catch (error) {
    const info = errorInfo(host, error);
    host.log.debug(
      { sessionId: req.sessionId, variable: req.variableName, error: info.type },
      "variable set refused",
    );
    return { success: false, error: info, version: 0n, metadata: undefined };
  }
}

export async function listSessionVariables(
  host: RpcHost,
  req: pb.ListVariablesRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.ListVariablesResponse> {
  try {
    return {
      success: true,
      error: undefined,
      variables: [...(await host.variables.list(req.sessionId, req.prefix, principal))],
    };
  } catch (error) {
    return { success: false, error: errorInfo(host, error), variables: [] };
  }
}

export async function deleteSessionVariable(
  host: RpcHost,
  req: pb.DeleteVariableRequest,
  _call: unknown,
  principal: Principal,
): Promise<pb.StatusResponse> {
  try {
    await host.variables.delete(req.sessionId, req.variableName, req.expectedVersion, principal);
    host.log.debug({ sessionId: req.sessionId, variable: req.variableName }, "variable deleted");
    return { success: true, error: undefined };
  } catch (error) {
    return { success: false, error: errorInfo(host, error) };
  }
}

type UpdateStream = grpc.ServerWritableStream<pb.WatchVariablesRequest, Buffer>;

function encode(update: pb.VariableUpdate): Buffer {
  return asBuffer(pb.VariableUpdate.encode(update).finish());
}

// A committed write is encoded once however many watchers it reaches.
const encodedSets = new WeakMap<pb.Variable, Buffer>();

const base = (sessionId: string) => ({
  sessionId,
  value: undefined,
  metadata: undefined,
  error: undefined,
  version: 0n,
  sequence: 0n,
  endReason: "",
});

function readyBytes(sessionId: string): Buffer {
  return encode({
    ...base(sessionId),
    variableName: "",
    kind: pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_READY,
  });
}

function updateBytes(host: RpcHost, sessionId: string, event: WatchEvent): Buffer {
  switch (event.kind) {
    case "initial":
    case "set": {
      const { variable } = event;
      const cached = event.kind === "set" ? encodedSets.get(variable) : undefined;
      if (cached !== undefined) return cached;
      const bytes = encode({
        ...base(sessionId),
        variableName: variable.name,
        kind:
          event.kind === "set"
            ? pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_SET
            : pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_INITIAL,
        value: variable.value,
        version: variable.version,
        metadata: variable.metadata,
        sequence: event.sequence,
      });
      if (event.kind === "set") encodedSets.set(variable, bytes);
      return bytes;
    }
    case "deleted":
      return encode({
        ...base(sessionId),
        variableName: event.name,
        kind: pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_DELETED,
        version: event.version,
        sequence: event.sequence,
      });
    case "session_ended":
      return encode({
        ...base(sessionId),
        variableName: "",
        kind: pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_SESSION_ENDED,
        endReason: event.reason,
      });
    case "error":
      return encode({
        ...base(sessionId),
        variableName: "",
        kind: pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_UNSPECIFIED,
        error: errorInfo(host, event.error),
      });
  }
}

/**
 * WatchSessionVariables. Once the watch is subscribed, the session checked and the
 * initial values read, the host sends a READY update: a client that waits for it knows
 * every later write reaches it. (A watch that failed sends its error update instead.)
 * Then come the initial values (when asked for) or the changes after
 * resume_after_sequence, and every committed change in commit order, pulled only as fast
 * as the client reads. The stream ends after a SESSION_ENDED update, after an update
 * carrying an error (bad request, unknown session, a reader too far behind), with
 * UNAVAILABLE when the host shuts down, with UNAUTHENTICATED when the credentials it was
 * opened with are revoked (no update is sent after that), or when the client cancels.
 */
export async function watchSessionVariables(
  host: RpcHost,
  call: UpdateStream,
  credentials: StreamCredentials,
): Promise<void> {
  const req = call.request;
  const { principal } = credentials;
  let watch: ReturnType<RpcHost["variables"]["watch"]>;
  let release: () => void;
  try {
    release = host.streams.open(req.sessionId, principal);
  } catch (error) {
    call.write(updateBytes(host, req.sessionId, { kind: "error", error: error as BridgeError }));
    call.end();
    return;
  }
  try {
    watch = host.variables.watch(
      req.sessionId,
      {
        names: req.variableNames,
        includeInitialValues: req.includeInitialValues,
        resumeAfter: req.resumeAfterSequence,
      },
      principal,
    );
  } catch (error) {
    release();
    call.write(updateBytes(host, req.sessionId, { kind: "error", error: error as BridgeError }));
    call.end();
    return;
  }
  const onCancelled = () => watch.close();
  call.once("cancelled", onCancelled);
  credentials.onRevoked((revocation) => {
    watch.close();
    if (!call.cancelled) call.emit("error", revocation);
  });
  try {
    await sendUpdates(host, call, watch, () => credentials.revoked === undefined);
  } finally {
    release();
    call.removeListener("cancelled", onCancelled);
    watch.close();
    host.log.debug({ sessionId: req.sessionId }, "variable watch ended");
  }
}

/** Writes a watch's updates (READY first) until its last one, or until `open()` turns false or the client goes. */
async function sendUpdates(
  host: RpcHost,
  call: UpdateStream,
  watch: ReturnType<RpcHost["variables"]["watch"]>,
  open: () => boolean,
): Promise<void> {
  const req = call.request;
  const started = await watch.started.then(
    () => true,
    () => false,
  );
  if (started && !call.cancelled && open() && !call.write(readyBytes(req.sessionId))) await writable(call);
  host.log.debug({ sessionId: req.sessionId, names: req.variableNames.length }, "variable watch started");
  for (;;) {
    const event = await watch.next();
    if (event === undefined || call.cancelled || !open()) return;
    if (event.kind === "error" && event.error.type === ErrorType.Unavailable) {
      // Shutdown: the transport status lets clients treat it like every other refused call.
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: event.error.message });
      return;
    }
    let bytes = updateBytes(host, req.sessionId, event);
    let last = event.kind === "session_ended" || event.kind === "error";
    if (bytes.length > host.config.maxMessageBytes) {
      const error = new BridgeError(
        ErrorType.ResourceExhausted,
        `an update of variable '${event.kind === "set" || event.kind === "initial" ? event.variable.name : ""}' ` +
          `is ${bytes.length} bytes, over the host's ${host.config.maxMessageBytes}-byte message limit ` +
          "(maxMessageBytes); keep maxVariableBytes below it",
        { details: { size: String(bytes.length), limit: String(host.config.maxMessageBytes) } },
      );
      bytes = updateBytes(host, req.sessionId, { kind: "error", error });
      last = true;
    }
    if (!call.write(bytes)) await writable(call);
    if (last) break;
  }
  if (!call.cancelled && open()) call.end();
}
