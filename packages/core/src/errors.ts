/**
 * The error vocabulary of toolbridge. Every failure a user can see carries one of
 * these types, both in-band (`ErrorInfo.type` on the wire) and in the TS and Python
 * clients. docs/errors.md explains each one and what to do about it.
 */
export const ErrorType = {
  SessionNotFound: "SessionNotFound",
  SessionLimitExceeded: "SessionLimitExceeded",
  ToolNotFound: "ToolNotFound",
  ValidationError: "ValidationError",
  InvalidValue: "InvalidValue",
  ToolExecutionError: "ToolExecutionError",
  Timeout: "Timeout",
  Cancelled: "Cancelled",
  RateLimitExceeded: "RateLimitExceeded",
  ConcurrencyLimitExceeded: "ConcurrencyLimitExceeded",
  ResourceExhausted: "ResourceExhausted",
  VariableNotFound: "VariableNotFound",
  VersionConflict: "VersionConflict",
  ConstraintViolation: "ConstraintViolation",
  /** A request id already names another call in the session (another tool or other arguments). */
  RequestIdReused: "RequestIdReused",
  Unavailable: "Unavailable",
  InternalError: "InternalError",
  /** Client side only: the call failed in transport; `grpcCode` says how. */
  CommunicationError: "CommunicationError",
} as const;

export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

const KNOWN_TYPES: ReadonlySet<string> = new Set(Object.values(ErrorType));

export function isErrorType(value: string): value is ErrorType {
  return KNOWN_TYPES.has(value);
}

export interface BridgeErrorOptions {
  details?: Record<string, string>;
  /** gRPC status code, for CommunicationError. */
  grpcCode?: number;
  cause?: unknown;
}

/** The one error class of toolbridge's TypeScript packages. */
export class BridgeError extends Error {
  override readonly name = "BridgeError";
  readonly type: ErrorType;
  readonly details: Record<string, string>;
  readonly grpcCode: number | undefined;

  constructor(type: ErrorType, message: string, options: BridgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.type = type;
    this.details = options.details ?? {};
    this.grpcCode = options.grpcCode;
  }

  /** A copy with `key` set in details; used to add context while an error unwinds. */
  withDetail(key: string, value: string, message?: string): BridgeError {
    const copy = new BridgeError(this.type, message ?? this.message, {
      details: { ...this.details, [key]: value },
      grpcCode: this.grpcCode,
      cause: this.cause,
    });
    copy.stack = this.stack;
    return copy;
  }
}

export function isBridgeError(value: unknown): value is BridgeError {
  return value instanceof BridgeError;
}
