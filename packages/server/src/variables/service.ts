/**
 * The host's variable operations at the wire level, shared by the RPC handlers and the
 * in-process API (SessionVariables): input checks, limits, the session's TTL, the
 * store's atomic mutation with the pure semantics, and the watchers.
 */
import { BridgeError, decodeValue, ErrorType, type pb, pbValues } from "@toolbridge/core";
import type { Logger } from "pino";
import { type Principal, recordedWriter } from "../auth/principal.js";
import type { SessionManager } from "../sessions/manager.js";
import type { SessionEnded } from "../sessions/session-table.js";
import type { Following, VariableChange, VariableStore } from "../sessions/variable-store.js";
import type { Declaration } from "./conform.js";
import { parseDeclaration } from "./constraints.js";
import { applyDelete, applySet, REPLY_OVERHEAD_BYTES, type VariableQuotas } from "./semantics.js";
import { VariableWatch, WatchBudget, type WatchEvent } from "./watch.js";

export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
const WRITER = /^[a-z][a-z0-9_-]{0,31}$/;
const MAX_WATCHED_NAMES = 1000;
/** Bytes an update costs beyond its value, for the watch buffer's accounting. */
const UPDATE_OVERHEAD = 128;

export interface VariableLimits {
  /** Largest encoded value a variable may hold. */
  readonly maxVariableBytes: number;
  readonly maxVariablesPerSession: number;
  /** How far (in bytes of updates) a watcher may fall behind before its watch is ended. */
  readonly watchBufferBytes: number;
  /** Bytes of updates all watches may hold together; 0 or omitted: no such limit. */
  readonly maxTotalWatchBufferBytes?: number;
  readonly maxTagsPerVariable: number;
  readonly maxTagBytes: number;
  readonly maxSessionVariableBytes: number;
  /** Of the memory store; 0: no limit. */
  readonly maxTotalVariableBytes: number;
  /** Largest message the host sends: every variable must fit one, with a reply around it. */
  readonly maxMessageBytes: number;
}

export interface SetRequest {
  readonly name: string;
  readonly value: pbValues.Value | undefined;
  /** Declares the variable when non-empty. */
  readonly type: string;
  readonly constraints: pb.VariableConstraints | undefined;
  /** The name the writer gives itself: "python", "typescript", ... (created_by of the request). */
  readonly writer: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly createIfMissing: boolean;
  readonly expectedVersion: bigint | undefined;
}

export interface WatchRequest {
  /** Empty watches every variable of the session. */
  readonly names: readonly string[];
  readonly includeInitialValues: boolean;
  /**
   * Resume a watch: first the changes committed after this sequence (the last one the
   * watcher saw), then every later one. Excludes includeInitialValues.
   */
  readonly resumeAfter?: bigint | undefined;
}

function invalidName(name: string): BridgeError {
  return new BridgeError(
    ErrorType.ValidationError,
    `invalid variable name ${JSON.stringify(name.slice(0, 200))}: use 1-128 characters, a letter or _ ` +
      "first, then letters, digits and _ . -",
    { details: { field: "variable_name" } },
  );
}

export function checkName(name: string): void {
  if (!VARIABLE_NAME.test(name)) throw invalidName(name);
}

export class VariableService {
  private readonly watchers = new Map<string, Set<VariableWatch>>();
  /** What each started watch follows in the store; closed with the watch. */
  private readonly following = new WeakMap<VariableWatch, Following>();
  /** Encoded sizes of stored values, computed once when they are written. */
  private readonly sizes = new WeakMap<pbValues.Value, number>();

  private readonly quotas: VariableQuotas;
  private readonly watchBudget: WatchBudget;

  constructor(
    private readonly sessions: SessionManager,
    private readonly store: VariableStore,
    readonly limits: VariableLimits,
    private readonly log: Logger,
  ) {
    this.quotas = {
      maxTags: limits.maxTagsPerVariable,
      maxTagBytes: limits.maxTagBytes,
      maxSessionBytes: limits.maxSessionVariableBytes,
      maxStoreBytes: limits.maxTotalVariableBytes,
      maxVariableMessageBytes: limits.maxMessageBytes - REPLY_OVERHEAD_BYTES,
    };
    this.watchBudget = new WatchBudget(limits.maxTotalWatchBufferBytes ?? 0);
    store.onChanged((change) => this.changed(change));
    store.onFollowLost((sessionId, error) => this.followLost(sessionId, error));
    sessions.onSessionEnded((event) => this.sessionEnded(event));
  }

  async get(sessionId: string, name: string, principal: Principal): Promise<pb.Variable> {
    checkName(name);
    await this.sessions.require(sessionId, principal);
    const variable = await this.store.get(sessionId, name, Date.now());
    if (variable === undefined) {
      throw new BridgeError(
        ErrorType.VariableNotFound,
        `variable '${name}' does not exist in session '${sessionId}'`,
        { details: { variable: name } },
      );
    }
    return variable;
  }

  /** Writes a variable as `principal` (recorded as its writer when authenticated). */
  async set(sessionId: string, request: SetRequest, principal: Principal): Promise<pb.Variable> {
    const { name } = request;
    checkName(name);
    await this.sessions.require(sessionId, principal);
    const value = this.checkValue(name, request.value);
    const writer = request.writer === "" ? "unknown" : request.writer;
    if (!WRITER.test(writer)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `invalid created_by ${JSON.stringify(writer.slice(0, 100))}: use a short lowercase name such as ` +
          "python or typescript",
        { details: { field: "metadata.created_by" } },
      );
    }
    checkTags(request.tags);
    let declaration: Declaration | undefined;
    if (request.type !== "") {
      declaration = parseDeclaration(name, request.type, request.constraints);
    } else if (request.constraints !== undefined && hasConstraints(request.constraints)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `constraints for variable '${name}' need a type: set metadata.type to declare it`,
        { details: { field: "metadata.type", variable: name } },
      );
    }
    const now = Date.now();
    const change = await this.store.mutate(
      sessionId,
      name,
      (slot) =>
        applySet(slot, {
          sessionId,
          name,
          value,
          declaration,
          writer: recordedWriter(principal, writer),
          writerLabel: writer,
          tags: request.tags,
          createIfMissing: request.createIfMissing,
          expectedVersion: request.expectedVersion,
          now,
          maxVariables: this.limits.maxVariablesPerSession,
          valueBytes: this.sizes.get(value),
          quotas: this.quotas,
        }),
      now,
    );
    if (change.result.kind !== "set") throw new Error("a set committed as a delete");
    return change.result.variable;
  }

  /** Deletes the variable; resolves with the version the deletion committed as. */
  async delete(
    sessionId: string,
    name: string,
    expectedVersion: bigint | undefined,
    principal: Principal,
  ): Promise<bigint> {
    checkName(name);
    await this.sessions.require(sessionId, principal);
    const change = await this.store.mutate(
      sessionId,
      name,
      (slot) => applyDelete(slot, sessionId, name, expectedVersion),
      Date.now(),
    );
    return change.result.kind === "deleted" ? change.result.version : 0n;
  }

  async list(sessionId: string, prefix: string, principal: Principal): Promise<readonly pb.Variable[]> {
    await this.sessions.require(sessionId, principal);
    return (await this.store.list(sessionId, { prefix }, Date.now())).variables;
  }

  /** Number of variables of a session; 0 when the session does not exist. */
  async count(sessionId: string): Promise<number> {
    try {
      return await this.store.count(sessionId, Date.now());
    } catch (error) {
      if (error instanceof BridgeError && error.type === ErrorType.SessionNotFound) return 0;
      throw error;
    }
  }

  /**
   * Starts a watch. It is registered before this returns; once `started` resolves, every
   * change committed afterwards (through any node) reaches it. The session check and the
   * initial values or resumed changes follow asynchronously (a failure arrives as the
   * watch's error event).
   */
  watch(sessionId: string, request: WatchRequest, principal: Principal): VariableWatch {
    for (const name of request.names) checkName(name);
    if (request.names.length > MAX_WATCHED_NAMES) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `a watch may name at most ${MAX_WATCHED_NAMES} variables; watch them all with an empty list instead`,
        { details: { field: "variable_names" } },
      );
    }
    const { resumeAfter } = request;
    if (resumeAfter !== undefined && request.includeInitialValues) {
      throw new BridgeError(
        ErrorType.ValidationError,
        "a resumed watch (resume_after_sequence) continues from the changes it missed and takes no " +
          "initial values; drop include_initial_values or resume_after_sequence",
        { details: { field: "resume_after_sequence" } },
      );
    }
    const names = request.names.length === 0 ? undefined : new Set(request.names);
    const watch = new VariableWatch(
      sessionId,
      names,
      this.limits.watchBufferBytes,
      (closed) => this.unsubscribe(closed),
      request.includeInitialValues || resumeAfter !== undefined,
      this.watchBudget,
    );
    let set = this.watchers.get(sessionId);
    if (set === undefined) {
      set = new Set();
      this.watchers.set(sessionId, set);
    }
    set.add(watch);
    watch.started = this.start(watch, names, request, principal).catch((error: unknown) => {
      const failure = asBridgeError(error);
      watch.push({ kind: "error", error: failure }, 0);
      // Without this, a watch whose start failed would wait for its first events forever.
      watch.begin([], 0n, () => 0);
      throw failure;
    });
    // The failure also reaches the consumer as the watch's error event; nobody need await this.
    watch.started.catch(() => {});
    return watch;
  }

  /** Ends every watch with Unavailable: the host is shutting down. */
  drain(message: string): void {
    const error = new BridgeError(ErrorType.Unavailable, message);
    for (const set of this.watchers.values()) {
      for (const watch of set) watch.push({ kind: "error", error }, 0);
    }
  }

  /** Encoded size of a stored variable's value. */
  sizeOf(variable: pb.Variable): number {
    const value = variable.value;
    if (value === undefined) return UPDATE_OVERHEAD;
    let size = this.sizes.get(value);
    if (size === undefined) {
      size = pbValues.Value.encode(value).finish().length;
      this.sizes.set(value, size);
    }
    return size + UPDATE_OVERHEAD;
  }

  private async start(
    watch: VariableWatch,
    names: ReadonlySet<string> | undefined,
    request: WatchRequest,
    principal: Principal,
  ): Promise<void> {
    const { sessionId } = watch;
    await this.sessions.require(sessionId, principal);
    const following = await this.store.follow(sessionId, Date.now());
    if (watch.isClosed) {
      following.close();
      return;
    }
    this.following.set(watch, following);
    const sizeOf = (event: WatchEvent) => this.eventSize(event);
    try {
      if (request.resumeAfter !== undefined) {
        const history = await this.store.changesSince(sessionId, request.resumeAfter, Date.now());
        const missed = history.changes.filter((change) => watch.accepts(change.name)).map(watchEvent);
        watch.begin(missed, history.sequence, sizeOf);
      } else if (request.includeInitialValues) {
        const filter = names === undefined ? {} : { names };
        const snapshot = await this.store.list(sessionId, filter, Date.now());
        const initial = snapshot.variables
          .filter((variable) => watch.accepts(variable.name))
          .map((variable): WatchEvent => ({ kind: "initial", variable, sequence: snapshot.sequence }));
        watch.begin(initial, snapshot.sequence, sizeOf);
      }
    } catch (error) {
      // The session ended after the watch subscribed: its session_ended event is queued.
      if (!(error instanceof BridgeError && error.type === ErrorType.SessionNotFound)) throw error;
      watch.begin([], 0n, sizeOf);
    }
  }

  private eventSize(event: WatchEvent): number {
    return event.kind === "set" || event.kind === "initial" ? this.sizeOf(event.variable) : UPDATE_OVERHEAD;
  }

  private checkValue(name: string, value: pbValues.Value | undefined): pbValues.Value {
    if (value?.kind === undefined) {
      throw new BridgeError(
        ErrorType.InvalidValue,
        `no value for variable '${name}': send a Value (null_value for null)`,
        { details: { reason: "no_kind", variable: name } },
      );
    }
    const size = pbValues.Value.encode(value).finish().length;
    if (size > this.limits.maxVariableBytes) {
      throw new BridgeError(
        ErrorType.InvalidValue,
        `the value of variable '${name}' is ${size} bytes encoded, over the host's ` +
          `${this.limits.maxVariableBytes}-byte limit (maxVariableBytes); store something smaller ` +
          "(e.g. a reference to the data) or raise the limit",
        {
          details: {
            reason: "too_large",
            size: String(size),
            limit: String(this.limits.maxVariableBytes),
            variable: name,
          },
        },
      );
    }
    try {
      // Decoding checks what the wire cannot (tensor sizes, canonical big ints, depth),
      // so that no reader in any language ever gets a value it cannot decode.
      decodeValue(value);
    } catch (error) {
      if (error instanceof BridgeError) {
        throw new BridgeError(error.type, `the value of variable '${name}': ${error.message}`, {
          details: { ...error.details, variable: name },
        });
      }
      throw error;
    }
    this.sizes.set(value, size);
    return value;
  }

  private changed(change: VariableChange): void {
    const set = this.watchers.get(change.sessionId);
    if (set === undefined) return;
    const event = watchEvent(change);
    const size = this.eventSize(event);
    for (const watch of set) {
      if (watch.accepts(change.name)) watch.push(event, size, change.sequence);
    }
  }

  private sessionEnded(event: SessionEnded): void {
    const set = this.watchers.get(event.id);
    if (set === undefined) return;
    this.log.debug({ sessionId: event.id, watchers: set.size }, "ending the variable watches of a session");
    for (const watch of set) watch.push({ kind: "session_ended", reason: event.reason }, 0);
    // Nothing more can reach these watches; a session created later with this id gets new ones.
    this.watchers.delete(event.id);
  }

  private followLost(sessionId: string, error: BridgeError): void {
    const set = this.watchers.get(sessionId);
    if (set === undefined) return;
    this.log.warn({ sessionId, watchers: set.size, err: error }, `ending variable watches: ${error.message}`);
    for (const watch of set) watch.push({ kind: "error", error }, 0);
    this.watchers.delete(sessionId);
  }

  private unsubscribe(watch: VariableWatch): void {
    this.following.get(watch)?.close();
    this.following.delete(watch);
    const set = this.watchers.get(watch.sessionId);
    if (set === undefined) return;
    set.delete(watch);
    if (set.size === 0) this.watchers.delete(watch.sessionId);
  }
}

function watchEvent(change: VariableChange): WatchEvent {
  const { result, sequence } = change;
  return result.kind === "set"
    ? { kind: "set", variable: result.variable, sequence }
    : { kind: "deleted", name: change.name, version: result.version, sequence };
}

function hasConstraints(c: pb.VariableConstraints): boolean {
  return (
    c.min !== undefined ||
    c.max !== undefined ||
    c.minLength !== undefined ||
    c.maxLength !== undefined ||
    c.pattern !== "" ||
    c.choices.length > 0 ||
    c.shape.length > 0 ||
    c.dimensions !== 0 ||
    c.itemType !== "" ||
    c.dtype !== 0
  );
}

/** Tag keys must be non-empty; their number and size are quotas (semantics.ts). */
function checkTags(tags: Readonly<Record<string, string>>): void {
  if (Object.hasOwn(tags, "")) {
    throw new BridgeError(ErrorType.ValidationError, "invalid tags: a tag key may not be empty", {
      details: { field: "metadata.tags" },
    });
  }
}

function asBridgeError(error: unknown): BridgeError {
  if (error instanceof BridgeError) return error;
  return new BridgeError(ErrorType.InternalError, `internal host error: ${String(error)}`, { cause: error });
}
