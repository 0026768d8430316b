/**
 * Requests that cannot be decoded. grpc-js answers a deserializer that throws with
 * INTERNAL "Error deserializing request", which docs/errors.md reserves for host bugs;
 * the guarded deserializers here return a MalformedRequest instead, and every handler
 * answers it with INVALID_ARGUMENT naming the problem before doing anything else.
 */
import * as grpc from "@grpc/grpc-js";

/** Why a request could not be decoded (docs/errors.md lists them). */
export type MalformedReason = "invalid_utf8" | "too_deep" | "malformed";

/** Protobuf's own nesting limit, which the generated decoders enforce. */
const MAX_MESSAGE_NESTING = 100;

const PROBLEMS: Record<MalformedReason, string> = {
  invalid_utf8:
    "a string field holds bytes that are not valid UTF-8; send text as UTF-8 and binary data in a bytes field",
  too_deep:
    `its messages nest more than ${MAX_MESSAGE_NESTING} levels deep ` +
    "(a Value may nest at most 32 levels: see docs/values.md)",
  malformed: "the bytes are not a valid protobuf encoding of the request message",
};

/** What a guarded deserializer gives the handler in place of a request it will not decode. */
export class RefusedRequest {
  constructor(
    /** The status the call is answered with. */
    readonly status: { readonly code: grpc.status; readonly details: string },
  ) {}
}

/** A request that could not be decoded. */
export class MalformedRequest extends RefusedRequest {
  readonly reason: MalformedReason;

  constructor(method: string, error: unknown) {
    const reason = reasonOf(error);
    const cause = reason === "malformed" && error instanceof Error ? ` (${error.message})` : "";
    super({
      code: grpc.status.INVALID_ARGUMENT,
      details: `malformed request to ${method} (${reason}): ${PROBLEMS[reason]}${cause}`,
    });
    this.reason = reason;
  }
}

/**
 * Checked before a request is decoded: for a method, a function answering the refusal of
 * a request's bytes, or undefined to decode them (see value-budget.ts).
 */
export type RequestCheck = (method: string) => ((bytes: Buffer) => RefusedRequest | undefined) | undefined;

function reasonOf(error: unknown): MalformedReason {
  // The generated decoders read strings with a fatal TextDecoder, and count their nesting.
  if (
    error instanceof TypeError &&
    (error as NodeJS.ErrnoException).code === "ERR_ENCODING_INVALID_ENCODED_DATA"
  )
    return "invalid_utf8";
  if (error instanceof Error && /recursion limit/.test(error.message)) return "too_deep";
  return "malformed";
}

/**
 * A copy of `definition` whose request deserializers return MalformedRequest instead of
 * throwing, and with `check`, a RefusedRequest for bytes it refuses, without decoding them.
 */
export function guardRequests<D extends grpc.ServiceDefinition>(definition: D, check?: RequestCheck): D {
  const guarded: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    const refuse = check?.(method.path);
    guarded[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const refused = refuse?.(bytes);
        if (refused !== undefined) return refused;
        try {
          return decode(bytes);
        } catch (error) {
          return new MalformedRequest(method.path, error);
        }
      },
    };
  }
  return guarded as D;
}

/** Wraps a service's implementation before it is added, e.g. to require authentication. */
export type ServiceGuard = (
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
) => grpc.UntypedServiceImplementation;

/** The refusal for a request a guarded deserializer could not decode; undefined for a real request. */
export function refusalOf(request: unknown): RefusedRequest["status"] | undefined {
  return request instanceof RefusedRequest ? request.status : undefined;
}
