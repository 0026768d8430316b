/** The in-band form of a failure (ErrorInfo), the same for every call and every RPC. */
import { BridgeError, ErrorType, type pb } from "@toolbridge/core";
import type { Logger } from "pino";
import type { HostConfig } from "../config.js";

/** What turning a failure into ErrorInfo depends on: whether stack traces go to clients, and where host bugs are logged. */
export interface ErrorPolicy {
  readonly config: Pick<HostConfig, "exposeStackTraces">;
  readonly log: Logger;
}

/**
 * The in-band form of any failure: a BridgeError as it is (its stack trace only with
 * `exposeStackTraces`); anything else is a host bug, logged and answered as InternalError.
 */
export function errorInfo(policy: ErrorPolicy, error: unknown): pb.ErrorInfo {
  if (error instanceof BridgeError) {
    const { stacktrace, ...details } = error.details;
    return {
      type: error.type,
      message: error.message,
      details,
      stacktrace: policy.config.exposeStackTraces ? (stacktrace ?? "") : "",
    };
  }
  policy.log.error({ err: error }, "internal error while handling a call");
  return {
    type: ErrorType.InternalError,
    message: `internal host error: ${error instanceof Error ? error.message : String(error)}`,
    details: {},
    stacktrace: policy.config.exposeStackTraces && error instanceof Error ? (error.stack ?? "") : "",
  };
}
