/**
 * What a variable write or delete means, as pure functions of the variable's slot: the
 * version check, creation rules, declarations, constraints and metadata. Stores call
 * these inside their atomic read-modify-write (VariableStore.mutate), so the
 * rules are the same for every store.
 */
import { BridgeError, ErrorType, pb, pbValues, toPbTimestamp } from "@toolbridge/core";
import type { VariableMutationResult, VariableSlot } from "../sessions/variable-store.js";
import { conform, type Declaration, describeDeclaration } from "./conform.js";
import { sameDeclaration } from "./constraints.js";
import { inferType } from "./value-names.js";

export interface SetCommand {
  readonly sessionId: string;
  readonly name: string;
  /** Already checked to be a well-formed value within the size limit. */
  readonly value: pbValues.Value;
  /** A declaration to create the variable with (or to confirm); undefined for a plain write. */
  readonly declaration: Declaration | undefined;
  /** What created_by/updated_by record (auth/principal.ts recordedWriter). */
  readonly writer: string;
  /** The name the writer gave itself, kept as metadata.writer_label. */
  readonly writerLabel: string;
  /** Merged into the variable's tags. */
  readonly tags: Readonly<Record<string, string>>;
  readonly createIfMissing: boolean;
  readonly expectedVersion: bigint | undefined;
  /** Epoch milliseconds of the write. */
  readonly now: number;
  readonly maxVariables: number;
  /** The encoded size of `value`, when the caller knows it. */
  readonly valueBytes?: number;
  /** Limits beyond maxVariables; each one omitted is not checked. */
  readonly quotas?: VariableQuotas;
}

/** The limits a write is checked against (docs/configuration.md names each). */
export interface VariableQuotas {
  /** Most tags a variable may carry once this write's tags are merged in (maxTagsPerVariable). */
  readonly maxTags?: number;
  /** Largest tag, UTF-8 bytes of key and value (maxTagBytes). */
  readonly maxTagBytes?: number;
  /** Encoded bytes of all of a session's variables (maxSessionVariableBytes). */
  readonly maxSessionBytes?: number;
  /** Encoded bytes of every variable of a store that reports them (maxTotalVariableBytes); 0: none. */
  readonly maxStoreBytes?: number;
  /**
   * Largest encoded variable: the largest message the host sends (maxMessageBytes) less
   * what a reply adds around it, so that every write can be answered, read and watched.
   */
  readonly maxVariableMessageBytes?: number;
}

/** What a GetSessionVariable response or a watch update adds around a variable, at most. */
export const REPLY_OVERHEAD_BYTES = 512;

function exhausted(
  quota: string,
  limit: number,
  message: string,
  details: Record<string, string>,
): BridgeError {
  return new BridgeError(ErrorType.ResourceExhausted, message, {
    details: { quota, limit: String(limit), ...details },
  });
}

function varintLength(n: number): number {
  let length = 1;
  for (let rest = n; rest >= 0x80; rest = Math.floor(rest / 0x80)) length++;
  return length;
}

function checkTags(cmd: SetCommand, current: pb.Variable | undefined): Record<string, string> {
  const merged = { ...current?.metadata?.tags, ...cmd.tags };
  const { maxTags, maxTagBytes } = cmd.quotas ?? {};
  if (maxTagBytes !== undefined) {
    for (const [key, value] of Object.entries(cmd.tags)) {
      const size = Buffer.byteLength(key) + Buffer.byteLength(value);
      if (size > maxTagBytes) {
        throw exhausted(
          "maxTagBytes",
          maxTagBytes,
          `tag '${key.slice(0, 100)}' of variable '${cmd.name}' is ${size} bytes, over the host's ` +
            `${maxTagBytes}-byte limit per tag (maxTagBytes); keep tags short, store data in the value`,
          { variable: cmd.name, size: String(size) },
        );
      }
    }
  }
  const count = Object.keys(merged).length;
  if (maxTags !== undefined && count > maxTags) {
    throw exhausted(
      "maxTagsPerVariable",
      maxTags,
      `variable '${cmd.name}' would carry ${count} tags (tags merge over writes), over the host's limit of ` +
        `${maxTags} (maxTagsPerVariable); reuse tag keys, or delete and re-create the variable to drop old tags`,
      { variable: cmd.name, count: String(count) },
    );
  }
  return merged;
}

/** Refuses a variable of `bytes` that would not fit a reply, or overfill its session or store. */
function checkSize(slot: VariableSlot, cmd: SetCommand, bytes: number): void {
  const { maxSessionBytes, maxStoreBytes, maxVariableMessageBytes } = cmd.quotas ?? {};
  const { name } = cmd;
  if (maxVariableMessageBytes !== undefined && bytes > maxVariableMessageBytes) {
    throw exhausted(
      "maxMessageBytes",
      maxVariableMessageBytes + REPLY_OVERHEAD_BYTES,
      `variable '${name}' would be ${bytes} bytes with its metadata, too large to be sent back within the ` +
        "host's message limit (maxMessageBytes); store a smaller value, fewer tags or constraints",
      { variable: name, size: String(bytes) },
    );
  }
  const growth = bytes - slot.currentBytes;
  if (growth <= 0) return;
  if (maxSessionBytes !== undefined && slot.bytes + growth > maxSessionBytes) {
    throw exhausted(
      "maxSessionVariableBytes",
      maxSessionBytes,
      `session '${cmd.sessionId}' would hold ${slot.bytes + growth} bytes of variables, over the host's ` +
        `limit of ${maxSessionBytes} (maxSessionVariableBytes); delete variables you no longer need`,
      { variable: name, size: String(slot.bytes + growth) },
    );
  }
  if (maxStoreBytes !== undefined && maxStoreBytes > 0 && slot.storeBytes !== undefined) {
    if (slot.storeBytes + growth > maxStoreBytes) {
      throw exhausted(
        "maxTotalVariableBytes",
        maxStoreBytes,
        `the host holds ${slot.storeBytes} bytes of variables and session metadata, and this write would take ` +
          `it over its limit of ${maxStoreBytes} (maxTotalVariableBytes); retry once sessions have ended, or ` +
          "raise the limit",
        { variable: name },
      );
    }
  }
}

function storedDeclaration(variable: pb.Variable): Declaration | undefined {
  const metadata = variable.metadata;
  if (metadata?.declared !== true) return undefined;
  return {
    type: metadata.type as Declaration["type"],
    constraints: metadata.constraints ?? pb.VariableConstraints.fromPartial({}),
  };
}

export function checkVersion(
  sessionId: string,
  name: string,
  current: pb.Variable | undefined,
  expected: bigint | undefined,
): void {
  if (expected === undefined) return;
  const actual = current?.version ?? 0n;
  if (expected === actual) return;
  const now =
    current === undefined
      ? "it does not exist (expect version 0 to create it)"
      : `it is at version ${actual}`;
  throw new BridgeError(
    ErrorType.VersionConflict,
    `variable '${name}' in session '${sessionId}' was expected at version ${expected} but ${now}; ` +
      "another writer got there first: read it again and retry",
    { details: { variable: name, expected_version: String(expected), actual_version: String(actual) } },
  );
}

/** The outcome of a SetSessionVariable on `slot`; throws the in-band error of a refused write. */
export function applySet(slot: VariableSlot, cmd: SetCommand): VariableMutationResult {
  const { current } = slot;
  const { name } = cmd;
  checkVersion(cmd.sessionId, name, current, cmd.expectedVersion);

  let declaration = current === undefined ? undefined : storedDeclaration(current);
  if (cmd.declaration !== undefined) {
    if (declaration !== undefined && !sameDeclaration(declaration, cmd.declaration)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `variable '${name}' is already declared ${describeDeclaration(declaration)}; it cannot be ` +
          `redeclared ${describeDeclaration(cmd.declaration)}. Write it without a type, or delete it first`,
        { details: { field: "metadata.type", variable: name } },
      );
    }
    declaration = cmd.declaration;
  }

  if (current === undefined) {
    // expected_version 0 means "create it, and only if it does not exist".
    if (!cmd.createIfMissing && cmd.expectedVersion === undefined) {
      throw new BridgeError(
        ErrorType.VariableNotFound,
        `variable '${name}' does not exist in session '${cmd.sessionId}'; set create_if_missing ` +
          "(or expected_version 0) to create it",
        { details: { variable: name } },
      );
    }
    if (slot.count >= cmd.maxVariables) {
      throw new BridgeError(
        ErrorType.ResourceExhausted,
        `session '${cmd.sessionId}' already holds ${slot.count} variables, the host's limit ` +
          "(maxVariablesPerSession); delete some or raise the limit",
        { details: { limit: String(cmd.maxVariables), variable: name } },
      );
    }
  }

  const value = declaration === undefined ? cmd.value : conform(name, declaration, cmd.value);
  const tags = checkTags(cmd, current);
  const at = toPbTimestamp(cmd.now);
  const metadata: pb.VariableMetadata = {
    type: declaration?.type ?? inferType(value),
    createdBy: current?.metadata?.createdBy ?? cmd.writer,
    tags,
    createdAt: current?.metadata?.createdAt ?? at,
    updatedAt: at,
    updatedBy: cmd.writer,
    constraints: declaration?.constraints,
    declared: declaration !== undefined,
    writerLabel: cmd.writerLabel,
  };
  const version = (current?.version ?? slot.versionFloor) + 1n;
  const valueBytes =
    value === cmd.value && cmd.valueBytes !== undefined
      ? cmd.valueBytes
      : pbValues.Value.encode(value).finish().length;
  // The encoded pb.Variable without encoding the value again: its field is a tag, a length and the bytes.
  const shell = pb.Variable.encode({ name, value: undefined, version, metadata }).finish().length;
  const bytes = shell + 1 + varintLength(valueBytes) + valueBytes;
  checkSize(slot, cmd, bytes);
  const maxSessionBytes = cmd.quotas?.maxSessionBytes;
  const variable = { name, value, version, metadata };
  return {
    kind: "set",
    variable,
    bytes,
    ...(current === undefined ? { maxVariables: cmd.maxVariables } : {}),
    ...(maxSessionBytes === undefined || bytes <= slot.currentBytes ? {} : { maxSessionBytes }),
  };
}

/** The outcome of a DeleteSessionVariable on `slot`. */
export function applyDelete(
  slot: VariableSlot,
  sessionId: string,
  name: string,
  expectedVersion: bigint | undefined,
): VariableMutationResult {
  if (slot.current === undefined) {
    throw new BridgeError(
      ErrorType.VariableNotFound,
      `variable '${name}' does not exist in session '${sessionId}'`,
      { details: { variable: name } },
    );
  }
  checkVersion(sessionId, name, slot.current, expectedVersion);
  // A deletion is a change too: it commits as the next version, which watchers see.
  return { kind: "deleted", version: slot.current.version + 1n };
}
