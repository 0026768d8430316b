/** How the service refuses and stops calls while the host shuts down. */
import { BridgeError, ErrorType } from "@toolbridge/core";

/** The status details of an RPC refused because the host shuts down. */
export const SHUTTING_DOWN = "the toolbridge host is shutting down; retry against another host or later";

/**
 * The Unavailable error of a call refused (or, at the end of the grace period, stopped)
 * because the host shuts down; `details.reason` tells clients to treat it as the status
 * UNAVAILABLE that ExecuteTool gets then.
 */
export function shuttingDown(message: string): BridgeError {
  return new BridgeError(ErrorType.Unavailable, message, { details: { reason: "shutting_down" } });
}
