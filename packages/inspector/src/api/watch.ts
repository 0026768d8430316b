/**
 * A session's variables kept current: a watch registers first (READY: every write committed
 * from then on reaches it), then one ListSessionVariables reads the current values, and the
 * two are merged by version (a name's versions only grow), so nothing between them is lost
 * or shown twice. The current values come as one message rather than one per variable: a
 * session of 5,000 variables opens in one round trip. Changes are drawn at most once per
 * animation frame. A watch that drops (the gateway or host restarted) is opened again the
 * same way.
 */
import { useEffect, useState } from "react";
import { type Variable, VariableUpdateKind } from "../gen/toolbridge/v1/toolbridge_pb";
import { describeFailure, host, isAbort, ok } from "./client";

export interface WatchedVariable {
  readonly variable: Variable;
  /** When this page saw its latest change (ms); 0 for a value read when the page opened. */
  readonly changedAt: number;
}

export interface WatchState {
  readonly variables: ReadonlyMap<string, WatchedVariable>;
  /** The current values are in and changes arrive live. */
  readonly ready: boolean;
  /** Why the session's watch ended ("cleanup", "expired", ...). */
  readonly ended: string | undefined;
  readonly error: string | undefined;
}

const EMPTY: WatchState = { variables: new Map(), ready: false, ended: undefined, error: undefined };
/** Attempts to open a dropped watch again before giving up. */
const MAX_REOPENS = 5;

/** The variables of a session (those whose names start with one of `prefixes`; all when none). */
class VariableSet {
  readonly current = new Map<string, WatchedVariable>();
  /** The version each name had when it was last deleted, so an older listed value is not revived. */
  private readonly deleted = new Map<string, bigint>();

  constructor(readonly prefixes: readonly string[]) {}

  wants(name: string): boolean {
    return this.prefixes.length === 0 || this.prefixes.some((prefix) => name.startsWith(prefix));
  }

  /** Applies a value unless a newer one (or a newer deletion) of its name is known. */
  set(variable: Variable, changedAt: number): boolean {
    const known = this.current.get(variable.name)?.variable.version ?? this.deleted.get(variable.name) ?? -1n;
    if (variable.version <= known) return false;
    this.current.set(variable.name, { variable, changedAt });
    return true;
  }

  delete(name: string, version: bigint): boolean {
    const known = this.current.get(name)?.variable.version ?? -1n;
    if (version <= known) return false;
    this.deleted.set(name, version);
    return this.current.delete(name);
  }
}

/** Watches the variables of the session whose names start with one of `prefixes` (all when empty). */
export function useVariableWatch(sessionId: string, prefixes: readonly string[] = []): WatchState {
  const [state, setState] = useState<WatchState>(EMPTY);
  const key = prefixes.join("\u0000");
  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` stands for `prefixes`.
  useEffect(() => {
    const controller = new AbortController();
    const set = new VariableSet(prefixes);
    let ready = false;
    let frame: number | undefined;
    const draw = () => {
      frame ??= requestAnimationFrame(() => {
        frame = undefined;
        setState((old) => ({ ...old, variables: new Map(set.current), ready }));
      });
    };
    setState(EMPTY);
    const events: WatchEvents = {
      set,
      changed: draw,
      ready() {
        ready = true;
        draw();
      },
      ended: (reason) => setState((old) => ({ ...old, ended: reason })),
      failed: (error) => setState((old) => ({ ...old, error })),
    };
    void follow(sessionId, controller.signal, events);
    return () => {
      controller.abort();
      if (frame !== undefined) cancelAnimationFrame(frame);
    };
  }, [sessionId, key]);
  return state;
}

interface WatchEvents {
  readonly set: VariableSet;
  changed(): void;
  ready(): void;
  ended(reason: string): void;
  failed(error: string): void;
}

/** Lists the current values (one call per prefix) into the set, once the watch is registered. */
async function listCurrent(
  sessionId: string,
  prefixes: readonly string[],
  on: WatchEvents,
  signal: AbortSignal,
) {
  for (const prefix of prefixes.length === 0 ? [""] : prefixes) {
    const listed = ok(await host.listSessionVariables({ sessionId, prefix }, { signal }));
    for (const variable of listed.variables) on.set.set(variable, 0);
  }
  on.ready();
}

/** Runs the watch, opening it again after a dropped connection; returns when it ends or is aborted. */
async function follow(sessionId: string, signal: AbortSignal, on: WatchEvents): Promise<void> {
  for (let attempt = 0; attempt <= MAX_REOPENS && !signal.aborted; attempt++) {
    try {
      let listing: Promise<void> | undefined;
      for await (const update of host.watchSessionVariables({ sessionId }, { signal })) {
        if (update.error !== undefined) {
          on.failed(`${update.error.type}: ${update.error.message}`);
          return;
        }
        switch (update.kind) {
          case VariableUpdateKind.READY:
            listing = listCurrent(sessionId, on.set.prefixes, on, signal).catch((error: unknown) => {
              if (!isAbort(error)) on.failed(describeFailure(error));
            });
            break;
          case VariableUpdateKind.SET:
            if (on.set.wants(update.variableName) && update.value !== undefined) {
              const { variableName: name, value, version, metadata } = update;
              if (
                on.set.set(
                  { $typeName: "toolbridge.v1.Variable", name, value, version, metadata },
                  Date.now(),
                )
              )
                on.changed();
            }
            break;
          case VariableUpdateKind.DELETED:
            if (on.set.delete(update.variableName, update.version)) on.changed();
            break;
          case VariableUpdateKind.SESSION_ENDED:
            on.ended(update.endReason || "ended");
            return;
        }
      }
      await listing;
      return;
    } catch (error) {
      if (signal.aborted || isAbort(error)) return;
      on.failed(describeFailure(error));
      await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
    }
  }
}
