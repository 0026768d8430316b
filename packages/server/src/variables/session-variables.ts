/**
 * SessionVariables: the TypeScript application's direct access to a session's variables
 * (host.variables(sessionId)), with exactly the semantics of the variable RPCs, so the
 * application and its Python and TypeScript workers share one state.
 */
import {
  BridgeError,
  constraintsToPb,
  type DeclareVariableOptions,
  type DecodeOptions,
  ErrorType,
  encodeVariableValue,
  expectedVersionToPb,
  type pb,
  resumeAfterToPb,
  type SetVariableOptions,
  type Variable,
  type VariableType,
  type VariableUpdate,
  type VariableWatcher,
  variableFromPb,
  type WatchVariablesOptions,
} from "@toolbridge/core";
import { HOST } from "../auth/principal.js";
import type { VariableService } from "./service.js";
import type { VariableWatch } from "./watch.js";

export class SessionVariables {
  constructor(
    private readonly service: VariableService,
    readonly sessionId: string,
    private readonly writer = "typescript",
    private readonly decode: DecodeOptions = {},
  ) {}

  /** The variable with its value and metadata; throws VariableNotFound or SessionNotFound. */
  async get(name: string): Promise<Variable> {
    return variableFromPb(await this.service.get(this.sessionId, name, HOST), this.decode);
  }

  /** True when the variable exists. */
  async has(name: string): Promise<boolean> {
    try {
      await this.service.get(this.sessionId, name, HOST);
      return true;
    } catch (error) {
      if (error instanceof BridgeError && error.type === ErrorType.VariableNotFound) return false;
      throw error;
    }
  }

  /**
   * Writes a value: an undeclared variable takes any value, a declared one must satisfy
   * its type and constraints (else ConstraintViolation, and the old value stays).
   * Resolves with the variable as stored (e.g. 2 written to a float variable reads 2.0).
   */
  async set(name: string, value: unknown, options: SetVariableOptions = {}): Promise<Variable> {
    return this.write(name, encodeVariableValue(name, value), "", undefined, options);
  }

  /**
   * Creates a variable with a declared type and constraints, holding `value`. Declaring
   * an existing variable again with the same type and constraints is a plain write;
   * with a different declaration it fails with ValidationError.
   */
  async declare(
    name: string,
    type: VariableType,
    value: unknown,
    options: DeclareVariableOptions = {},
  ): Promise<Variable> {
    let constraints: pb.VariableConstraints;
    try {
      constraints = constraintsToPb(options.constraints);
    } catch (error) {
      if (error instanceof BridgeError) {
        throw new BridgeError(ErrorType.ValidationError, `a choice of variable '${name}': ${error.message}`, {
          details: { field: "metadata.constraints.choices" },
        });
      }
      throw error;
    }
    return this.write(name, encodeVariableValue(name, value), type, constraints, {
      ...(options.tags === undefined ? {} : { tags: options.tags }),
      ...(options.expectedVersion === undefined ? {} : { expectedVersion: options.expectedVersion }),
    });
  }

  /** Deletes the variable; throws VariableNotFound, or VersionConflict when `expectedVersion` is stale. */
  async delete(name: string, options: { expectedVersion?: number } = {}): Promise<void> {
    await this.service.delete(this.sessionId, name, expectedVersionToPb(options.expectedVersion), HOST);
  }

  /** The session's variables, sorted by name (only names starting with `prefix` when given). */
  async list(options: { prefix?: string } = {}): Promise<Variable[]> {
    const variables = await this.service.list(this.sessionId, options.prefix ?? "", HOST);
    return variables.map((v) => variableFromPb(v, this.decode));
  }

  /**
   * Watches the named variables (all of the session's when `names` is empty): every
   * committed change in commit order, then a "session_ended" update when the session ends.
   */
  watch(names: readonly string[] = [], options: WatchVariablesOptions = {}): VariableWatcher {
    const watch = this.service.watch(
      this.sessionId,
      {
        names,
        includeInitialValues: options.includeInitialValues ?? false,
        resumeAfter: resumeAfterToPb(options.resumeAfterSequence),
      },
      HOST,
    );
    return new InProcessWatcher(watch, this.decode, options.signal);
  }

  private async write(
    name: string,
    value: pb.Variable["value"],
    type: string,
    constraints: pb.VariableConstraints | undefined,
    options: SetVariableOptions,
  ): Promise<Variable> {
    const variable = await this.service.set(
      this.sessionId,
      {
        name,
        value,
        type,
        constraints,
        writer: this.writer,
        tags: options.tags ?? {},
        createIfMissing: options.createIfMissing ?? true,
        expectedVersion: expectedVersionToPb(options.expectedVersion),
      },
      HOST,
    );
    return variableFromPb(variable, this.decode);
  }
}

class InProcessWatcher implements VariableWatcher {
  constructor(
    private readonly watch: VariableWatch,
    private readonly decode: DecodeOptions,
    signal: AbortSignal | undefined,
  ) {
    if (signal?.aborted) watch.close();
    signal?.addEventListener("abort", () => watch.close(), { once: true });
  }

  ready(): Promise<void> {
    return this.watch.started;
  }

  close(): void {
    this.watch.close();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<VariableUpdate, void, undefined> {
    const { sessionId } = this.watch;
    try {
      for (;;) {
        const event = await this.watch.next();
        if (event === undefined) return;
        switch (event.kind) {
          case "error":
            throw event.error;
          case "session_ended":
            yield { kind: "session_ended", sessionId, reason: event.reason };
            return;
          case "deleted":
            yield {
              kind: "deleted",
              sessionId,
              name: event.name,
              version: Number(event.version),
              sequence: Number(event.sequence),
            };
            break;
          default:
            yield {
              kind: event.kind,
              sessionId,
              name: event.variable.name,
              version: Number(event.variable.version),
              sequence: Number(event.sequence),
              variable: variableFromPb(event.variable, this.decode),
            };
        }
      }
    } finally {
      this.watch.close();
    }
  }
}
