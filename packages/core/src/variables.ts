/**
 * Session variables as TypeScript sees them, shared by the host's in-process API and
 * the client: the declarable types, their constraints, and the conversions between
 * the wire messages and plain objects. docs/variables.md describes the semantics.
 */
import { fromPbTimestamp } from "./convert.js";
import { BridgeError, ErrorType } from "./errors.js";
import * as pb from "./gen/toolbridge/v1/toolbridge.js";
import { DType, type Value } from "./gen/toolbridge/v1/values.js";
import type { DTypeName, NativeValue } from "./native-values.js";
import { type DecodeOptions, decodeValue, encodeValue } from "./values.js";

/** Types a variable can be declared with. */
export const VARIABLE_TYPES = [
  "any",
  "boolean",
  "integer",
  "float",
  "string",
  "bytes",
  "timestamp",
  "choice",
  "list",
  "map",
  "embedding",
  "tensor",
] as const;

export type VariableType = (typeof VARIABLE_TYPES)[number];

/**
 * The type recorded for an undeclared variable, from the kind of its value (a declared
 * variable records its declared type instead).
 */
export type InferredVariableType =
  | "null"
  | "boolean"
  | "integer"
  | "float"
  | "string"
  | "bytes"
  | "timestamp"
  | "list"
  | "map"
  | "tensor";

/** Who wrote a variable: a Python or TypeScript client, the TS application, or the host itself. */
export type VariableWriter = "python" | "typescript" | "host" | (string & {});

/**
 * Constraints of a declared type; which ones apply depends on the type (docs/variables.md
 * has the table). Lengths count characters (code points) for strings, bytes for bytes,
 * items for lists and entries for maps.
 */
export interface VariableConstraints {
  readonly min?: number;
  readonly max?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  /** A regular expression the string must match somewhere (anchor it with ^...$ for a full match). */
  readonly pattern?: string;
  /** The allowed values: required for "choice", an enum for string, integer, float and any. */
  readonly choices?: readonly unknown[];
  /** Exact tensor shape. */
  readonly shape?: readonly number[];
  /** Exact embedding length. */
  readonly dimensions?: number;
  /** Type every item of a list must have. */
  readonly itemType?: VariableType;
  /** Tensor dtype. */
  readonly dtype?: DTypeName;
}

/** Everything about a variable except its value. */
export interface VariableInfo {
  readonly name: string;
  /** Bumped by every write; a write with `expectedVersion` succeeds only at this version. */
  readonly version: number;
  /** The declared type, or the type of the current value when `declared` is false. */
  readonly type: VariableType | InferredVariableType;
  readonly declared: boolean;
  /** The declared constraints (empty when undeclared). */
  readonly constraints: VariableConstraints;
  /**
   * Who wrote it first and last: the writer's principal on a host that authenticates
   * callers; otherwise (and for the host's own API and workers) the writer's own name.
   */
  readonly createdBy: VariableWriter;
  readonly updatedBy: VariableWriter;
  /** The name the latest writer gave itself ("python", "typescript"), unchecked. */
  readonly writerLabel: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface Variable extends VariableInfo {
  readonly value: NativeValue;
}

/** One event of a watch, in commit order. */
export type VariableUpdate =
  | {
      /** "initial": the value when the watch started (include initial values); "set": a committed write. */
      readonly kind: "initial" | "set";
      readonly sessionId: string;
      readonly name: string;
      readonly version: number;
      /**
       * The change's position in the session's sequence of changes (for "initial": the
       * snapshot's); pass the last one seen as resumeAfterSequence to resume a watch.
       */
      readonly sequence: number;
      readonly variable: Variable;
    }
  | {
      readonly kind: "deleted";
      readonly sessionId: string;
      readonly name: string;
      /** The version the deletion committed as (one above the variable's last version). */
      readonly version: number;
      readonly sequence: number;
    }
  | {
      /** The session ended; nothing follows. */
      readonly kind: "session_ended";
      readonly sessionId: string;
      /** "cleanup", "expired" or "shutdown". */
      readonly reason: string;
    };

export interface SetVariableOptions {
  /**
   * Write only if the variable is at this version (0: only if it does not exist yet);
   * otherwise the write fails with VersionConflict and changes nothing.
   */
  readonly expectedVersion?: number;
  /** Merged into the variable's tags. */
  readonly tags?: Readonly<Record<string, string>>;
  /** Create the variable when it does not exist (default true); false fails with VariableNotFound. */
  readonly createIfMissing?: boolean;
}

export interface DeclareVariableOptions {
  readonly constraints?: VariableConstraints;
  readonly tags?: Readonly<Record<string, string>>;
  /** As for a write; 0 declares only if the variable does not exist yet. */
  readonly expectedVersion?: number;
}

export interface WatchVariablesOptions {
  /** First yield an "initial" update with the current value of each watched variable that exists. */
  readonly includeInitialValues?: boolean;
  /**
   * Resume after the update with this `sequence` (the last one seen, e.g. before a
   * connection dropped): first every change committed after it, then every later one,
   * without gap or duplicate. Not together with includeInitialValues.
   */
  readonly resumeAfterSequence?: number;
  /** Aborting ends the watch (the iteration ends). */
  readonly signal?: AbortSignal;
}

// ---------------------------------------------------------------------------
// Conversions

const DTYPE_NAMES: Record<DTypeName, DType> = {
  bool: DType.DTYPE_BOOL,
  int8: DType.DTYPE_INT8,
  int16: DType.DTYPE_INT16,
  int32: DType.DTYPE_INT32,
  int64: DType.DTYPE_INT64,
  uint8: DType.DTYPE_UINT8,
  uint16: DType.DTYPE_UINT16,
  uint32: DType.DTYPE_UINT32,
  uint64: DType.DTYPE_UINT64,
  float16: DType.DTYPE_FLOAT16,
  float32: DType.DTYPE_FLOAT32,
  float64: DType.DTYPE_FLOAT64,
};
const DTYPE_BY_CODE = new Map<DType, DTypeName>(
  Object.entries(DTYPE_NAMES).map(([name, code]) => [code, name as DTypeName]),
);

/** A counter option (a version, a sequence) as its uint64 wire form; ValidationError naming it when bad. */
function counterToPb(value: number | undefined, option: string, field: string): bigint | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new BridgeError(ErrorType.ValidationError, `${option} ${value} is not a non-negative integer`, {
      details: { field },
    });
  }
  return BigInt(value);
}

/** The wire form of a resumeAfterSequence option; throws ValidationError for a bad number. */
export function resumeAfterToPb(sequence: number | undefined): bigint | undefined {
  return counterToPb(sequence, "resumeAfterSequence", "resume_after_sequence");
}

/** The wire form of an expectedVersion option; throws ValidationError for a bad number. */
export function expectedVersionToPb(version: number | undefined): bigint | undefined {
  return counterToPb(version, "expectedVersion", "expected_version");
}

/** encodeValue for a variable: a codec error names the variable. */
export function encodeVariableValue(name: string, value: unknown): Value {
  try {
    return encodeValue(value);
  } catch (error) {
    if (error instanceof BridgeError) {
      throw new BridgeError(error.type, `the value of variable '${name}': ${error.message}`, {
        details: { ...error.details, variable: name },
      });
    }
    throw error;
  }
}

export function isVariableType(name: string): name is VariableType {
  return (VARIABLE_TYPES as readonly string[]).includes(name);
}

/** The wire form of constraints; choices are encoded with the value codec (throws InvalidValue). */
export function constraintsToPb(constraints: VariableConstraints = {}): pb.VariableConstraints {
  const dtype =
    constraints.dtype === undefined
      ? DType.DTYPE_UNSPECIFIED
      : (DTYPE_NAMES as Partial<Record<string, DType>>)[constraints.dtype];
  return {
    min: constraints.min,
    max: constraints.max,
    minLength: constraints.minLength,
    maxLength: constraints.maxLength,
    pattern: constraints.pattern ?? "",
    choices: (constraints.choices ?? []).map((choice) => encodeValue(choice)),
    shape: [...(constraints.shape ?? [])],
    dimensions: constraints.dimensions ?? 0,
    itemType: constraints.itemType ?? "",
    // An unknown dtype name reaches the host as an invalid code and is refused there.
    dtype: dtype ?? DType.UNRECOGNIZED,
  };
}

/** Plain constraints from the wire form, listing only those that are set. */
export function constraintsFromPb(
  message: pb.VariableConstraints | undefined,
  options: DecodeOptions = {},
): VariableConstraints {
  if (message === undefined) return {};
  const out: {
    -readonly [K in keyof VariableConstraints]: VariableConstraints[K];
  } = {};
  if (message.min !== undefined) out.min = message.min;
  if (message.max !== undefined) out.max = message.max;
  if (message.minLength !== undefined) out.minLength = message.minLength;
  if (message.maxLength !== undefined) out.maxLength = message.maxLength;
  if (message.pattern !== "") out.pattern = message.pattern;
  if (message.choices.length > 0) out.choices = message.choices.map((c) => decodeValue(c, options));
  if (message.shape.length > 0) out.shape = [...message.shape];
  if (message.dimensions !== 0) out.dimensions = message.dimensions;
  if (message.itemType !== "" && isVariableType(message.itemType)) out.itemType = message.itemType;
  const dtype = DTYPE_BY_CODE.get(message.dtype);
  if (dtype !== undefined) out.dtype = dtype;
  return out;
}

/** VariableInfo from a name, version and wire metadata. */
export function variableInfoFromPb(
  name: string,
  version: bigint,
  metadata: pb.VariableMetadata | undefined,
  options: DecodeOptions = {},
): VariableInfo {
  return {
    name,
    version: Number(version),
    type: (metadata?.type ?? "any") as VariableType | InferredVariableType,
    declared: metadata?.declared ?? false,
    constraints: constraintsFromPb(metadata?.constraints, options),
    createdBy: metadata?.createdBy ?? "",
    updatedBy: metadata?.updatedBy ?? "",
    writerLabel: metadata?.writerLabel ?? "",
    tags: { ...metadata?.tags },
    createdAt: fromPbTimestamp(metadata?.createdAt),
    updatedAt: fromPbTimestamp(metadata?.updatedAt),
  };
}

/** A Variable from its wire form; throws InvalidValue when the value cannot be decoded. */
export function variableFromPb(message: pb.Variable, options: DecodeOptions = {}): Variable {
  return {
    ...variableInfoFromPb(message.name, message.version, message.metadata, options),
    value: decodeValue(message.value, options),
  };
}

/**
 * A watch update from its wire form; undefined for READY (the watch's readiness, which
 * VariableWatcher.ready() reports), for an update carrying an error (the caller raises
 * it) and for a kind this version does not know.
 */
export function variableUpdateFromPb(
  message: pb.VariableUpdate,
  options: DecodeOptions = {},
): VariableUpdate | undefined {
  const { sessionId, variableName: name } = message;
  switch (message.kind) {
    case pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_INITIAL:
    case pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_SET:
      return {
        kind: message.kind === pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_INITIAL ? "initial" : "set",
        sessionId,
        name,
        version: Number(message.version),
        sequence: Number(message.sequence),
        variable: variableFromPb(
          { name, value: message.value, version: message.version, metadata: message.metadata },
          options,
        ),
      };
    case pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_DELETED:
      return {
        kind: "deleted",
        sessionId,
        name,
        version: Number(message.version),
        sequence: Number(message.sequence),
      };
    case pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_SESSION_ENDED:
      return { kind: "session_ended", sessionId, reason: message.endReason };
    default:
      return undefined;
  }
}

/**
 * A running watch: iterate it for updates in commit order. Iteration ends after a
 * "session_ended" update or close(); a failure of the watch (unknown session, a reader
 * too far behind, the host shutting down) is thrown from the iteration as BridgeError.
 */
export interface VariableWatcher extends AsyncIterable<VariableUpdate> {
  /**
   * Resolves once the watch is registered on the host, so that every write committed
   * afterwards reaches it; rejects if the watch failed first.
   */
  ready(): Promise<void>;
  /** Stops the watch; an iteration in progress ends. */
  close(): void;
}
