/**
 * What a variable write or delete means, as pure functions of the variable's slot: the
 * version check, creation rules, declarations, constraints and metadata. Stores call
 * these inside their atomic read-modify-write (SessionStore.mutateVariable), so the
 * rules are the same for every store.
 */
import { BridgeError, ErrorType, pb, type pbValues, toPbTimestamp } from "@toolbridge/core";
import type { VariableMutationResult, VariableSlot } from "../sessions/store.js";
import { conform, type Declaration, describeDeclaration, inferType, sameDeclaration } from "./constraints.js";

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
  const at = toPbTimestamp(cmd.now);
  const metadata: pb.VariableMetadata = {
    type: declaration?.type ?? inferType(value),
    createdBy: current?.metadata?.createdBy ?? cmd.writer,
    tags: { ...current?.metadata?.tags, ...cmd.tags },
    createdAt: current?.metadata?.createdAt ?? at,
    updatedAt: at,
    updatedBy: cmd.writer,
    constraints: declaration?.constraints,
    declared: declaration !== undefined,
    writerLabel: cmd.writerLabel,
  };
  const version = (current?.version ?? slot.versionFloor) + 1n;
  const variable = { name, value, version, metadata };
  return current === undefined
    ? { kind: "set", variable, maxVariables: cmd.maxVariables }
    : { kind: "set", variable };
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
