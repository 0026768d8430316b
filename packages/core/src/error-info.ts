/**
 * `ErrorInfo`, the in-band form of a failure on the wire, read back as the one error class.
 * Every reader of an answer (the client, the host reading its workers' and other nodes'
 * answers) turns a failure into a BridgeError here, so they all keep the same parts of it.
 */
import { BridgeError, ErrorType, isErrorType } from "./errors.js";
import type { ErrorInfo } from "./gen/toolbridge/v1/toolbridge.js";

/**
 * The BridgeError of an in-band failure: its type (InternalError for a type this version
 * does not know), message and details. A stack trace sent along is kept as
 * `details.stacktrace`, where the host finds it again when it passes the error on.
 * `missing` is the message of a failure that came without its ErrorInfo.
 */
export function errorFromInfo(
  info: ErrorInfo | undefined,
  missing = "the peer reported a failure without saying which",
): BridgeError {
  if (info === undefined) return new BridgeError(ErrorType.InternalError, missing);
  const type = isErrorType(info.type) ? info.type : ErrorType.InternalError;
  const details = info.stacktrace === "" ? info.details : { ...info.details, stacktrace: info.stacktrace };
  return new BridgeError(type, info.message, { details });
}
