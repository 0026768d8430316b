import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { RpcStatusError } from "../grpc/status.js";
import type { AuthenticatedCall, Authenticator } from "./authenticator.js";
import type { StreamCredentials } from "./open-streams.js";

type Status = { code: grpc.status; details: string };
type AnyHandler = (
  call: AuthenticatedCall & NodeJS.EventEmitter,
  callback?: (status: Status) => void,
) => void;

/** The status refusing a call whose authentication failed: its own, or INTERNAL (logged) for a host bug. */
export function authenticationRefusal(error: unknown, log: Logger): Status {
  if (error instanceof RpcStatusError) return { code: error.code, details: error.message };
  log.error({ err: error }, "authentication failed with an unexpected error");
  return {
    code: grpc.status.INTERNAL,
    details: `internal host error while authenticating: ${String(error)}`,
  };
}

/**
 * `implementation` with every method answering UNAUTHENTICATED unless the caller
 * authenticates (while `auth` is enabled): for the services that need no principal of
 * their own, such as server reflection and the standard health service.
 */
export function requireAuthentication(
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  auth: Authenticator,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const guarded: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const handler = implementation[name] as unknown as AnyHandler | undefined;
    if (handler === undefined) continue;
    const streaming = method.requestStream || method.responseStream;
    const wrapped: AnyHandler = (call, callback) => {
      const authenticated: Promise<unknown> = streaming
        ? auth.authenticateStream(call).then((credentials) => keepUntilOver(call, credentials))
        : auth.authenticate(call);
      authenticated.then(
        () => handler(call, callback),
        (error: unknown) => {
          const status = authenticationRefusal(error, log);
          // A response stream is refused with an error event; a single response through its callback.
          if (method.responseStream || callback === undefined) call.emit("error", status);
          else callback(status);
        },
      );
    };
    guarded[name] = wrapped as unknown as grpc.UntypedHandleCall;
  }
  return guarded;
}

/**
 * A guarded stream's credentials, kept until the stream is over; revoked, they end the
 * stream with their status (the services write nothing to a stream that has ended).
 */
function keepUntilOver(call: NodeJS.EventEmitter, credentials: StreamCredentials): void {
  const release = () => credentials.release();
  call.once("finish", release);
  call.once("cancelled", release);
  credentials.onRevoked((revocation) => call.emit("error", revocation));
}
