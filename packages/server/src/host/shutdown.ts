/**
 * The graceful shutdown: health answers NOT_SERVING and new calls are refused while the
 * calls in flight get the grace period to finish; then the server closes, cancelling what
 * still runs, and every part is stopped and closed in turn.
 */
import type * as grpc from "@grpc/grpc-js";
import { SHUTTING_DOWN, shuttingDown } from "../rpc/draining.js";
import type { HostParts } from "./compose.js";
import type { Serving } from "./listen.js";

/** What a call on a Calls stream still running when the shutdown grace period ends fails with. */
const GRACE_OVER = shuttingDown(
  "the toolbridge host shut down before the call finished (its shutdown grace period ended); " +
    "retry against another host or later",
);

/** How long the answers to calls cancelled at the end of the grace period may take to go out. */
const ABORT_ANSWER_WAIT_MS = 1000;

/**
 * Shuts the host's parts down, giving the calls in flight up to `graceMs` (less when
 * `impatience` fires) before they are cancelled; `serving` is undefined when the host
 * never started, and then only the parts are stopped.
 */
export async function shutDown(
  parts: HostParts,
  serving: Serving | undefined,
  graceMs: number,
  impatience: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + graceMs;
  const { rpc } = parts;
  rpc.draining = true;
  parts.health.setHost(false);
  parts.sessions.stopSweeping();
  // Watches and idle call streams never finish by themselves; ending them now keeps them
  // from holding up the grace period.
  parts.variables.drain(SHUTTING_DOWN);
  rpc.callStreams.drain();
  // The inspector's calls are the host's own calls from a browser: they end with it.
  await serving?.inspector?.close();
  if (serving !== undefined) {
    // The server keeps listening meanwhile, so that health checks see NOT_SERVING.
    const idle = await rpc.calls.whenIdle(graceMs, impatience);
    if (idle) await close(parts, serving.server, deadline, impatience);
    else await cancelInFlight(parts, serving.server, impatience);
  }
  await parts.mcp.stop();
  await parts.workers.stop({ graceMs });
  await serving?.metricsEndpoint?.close();
  await parts.store.nodes?.withdraw();
  parts.forwarder?.close();
  await parts.store.close();
  serving?.privateDir.remove();
}

/** Closes a server with no call in flight, once the clients' open streams are done. */
async function close(
  parts: HostParts,
  server: grpc.Server,
  deadline: number,
  impatience: AbortSignal,
): Promise<void> {
  parts.standardHealth.closeWatches();
  parts.reflection.close();
  await new Promise<void>((resolve) => {
    const cancel = () => {
      clearTimeout(timer);
      void cancelInFlight(parts, server, impatience).then(resolve);
    };
    const timer = setTimeout(cancel, Math.max(0, deadline - Date.now()));
    impatience.addEventListener("abort", cancel, { once: true });
    server.tryShutdown(() => {
      clearTimeout(timer);
      impatience.removeEventListener("abort", cancel);
      resolve();
    });
  });
}

/**
 * Cancels the calls still in flight. Calls on Calls streams are answered first, each with
 * an Unavailable error saying why (briefly waited for); the rest see the server close.
 */
async function cancelInFlight(parts: HostParts, server: grpc.Server, impatience: AbortSignal): Promise<void> {
  if (!impatience.aborted) {
    parts.log.warn("grace period over: cancelling the calls still in flight");
  }
  await parts.rpc.callStreams.abort(GRACE_OVER, ABORT_ANSWER_WAIT_MS);
  server.forceShutdown();
}
