/**
 * A session's variables kept current by WatchSessionVariables: the initial values, then
 * every committed change. Updates are applied to a map as they arrive and drawn at most once
 * per animation frame, so 5,000 initial values cost a few renders, not 5,000. A watch that
 * drops (the gateway or host restarted) resumes after the last change it saw.
 */
import { useEffect, useState } from "react";
import { type Variable, VariableUpdateKind } from "../gen/toolbridge/v1/toolbridge_pb";
import { describeFailure, host, isAbort } from "./client";

export interface WatchedVariable {
  readonly variable: Variable;
  /** When this page saw its latest change (ms); 0 for an initial value. */
  readonly changedAt: number;
}

export interface WatchState {
  readonly variables: ReadonlyMap<string, WatchedVariable>;
  /** The host registered the watch (READY): every later write reaches it. */
  readonly ready: boolean;
  /** Why the session's watch ended ("cleanup", "expired", ...), or why it failed. */
  readonly ended: string | undefined;
  readonly error: string | undefined;
}

const EMPTY: WatchState = { variables: new Map(), ready: false, ended: undefined, error: undefined };
/** Attempts to resume a dropped watch before giving up. */
const MAX_RESUMES = 5;

/** Watches `names` of the session (all of them when empty). */
export function useVariableWatch(sessionId: string, names: readonly string[] = []): WatchState {
  const [state, setState] = useState<WatchState>(EMPTY);
  const key = names.join("\u0000");
  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` stands for `names`.
  useEffect(() => {
    const controller = new AbortController();
    const variables = new Map<string, WatchedVariable>();
    let ready = false;
    let frame: number | undefined;
    const draw = (extra: Partial<WatchState> = {}) => {
      if (frame !== undefined) return;
      frame = requestAnimationFrame(() => {
        frame = undefined;
        setState((old) => ({ ...old, ...extra, variables: new Map(variables), ready }));
      });
    };
    setState(EMPTY);
    void follow(sessionId, names, controller.signal, {
      set(variable, initial) {
        variables.set(variable.name, { variable, changedAt: initial ? 0 : Date.now() });
        draw();
      },
      deleted(name) {
        variables.delete(name);
        draw();
      },
      ready() {
        ready = true;
        draw();
      },
      ended(reason) {
        setState((old) => ({ ...old, ended: reason }));
      },
      failed(error) {
        setState((old) => ({ ...old, error }));
      },
    });
    return () => {
      controller.abort();
      if (frame !== undefined) cancelAnimationFrame(frame);
    };
  }, [sessionId, key]);
  return state;
}

interface WatchEvents {
  set(variable: Variable, initial: boolean): void;
  deleted(name: string): void;
  ready(): void;
  ended(reason: string): void;
  failed(error: string): void;
}

/** Runs the watch, resuming it after a dropped connection; returns when it ends or is aborted. */
async function follow(
  sessionId: string,
  names: readonly string[],
  signal: AbortSignal,
  on: WatchEvents,
): Promise<void> {
  let resumeAfter: bigint | undefined;
  for (let attempt = 0; attempt <= MAX_RESUMES && !signal.aborted; attempt++) {
    try {
      const request =
        resumeAfter === undefined
          ? { sessionId, variableNames: [...names], includeInitialValues: true }
          : { sessionId, variableNames: [...names], resumeAfterSequence: resumeAfter };
      for await (const update of host.watchSessionVariables(request, { signal })) {
        if (update.error !== undefined) {
          on.failed(`${update.error.type}: ${update.error.message}`);
          return;
        }
        if (update.sequence > 0n) resumeAfter = update.sequence;
        switch (update.kind) {
          case VariableUpdateKind.READY:
            on.ready();
            break;
          case VariableUpdateKind.INITIAL:
          case VariableUpdateKind.SET:
            on.set(
              {
                $typeName: "toolbridge.v1.Variable",
                name: update.variableName,
                value: update.value,
                version: update.version,
                metadata: update.metadata,
              },
              update.kind === VariableUpdateKind.INITIAL,
            );
            break;
          case VariableUpdateKind.DELETED:
            on.deleted(update.variableName);
            break;
          case VariableUpdateKind.SESSION_ENDED:
            on.ended(update.endReason || "ended");
            return;
        }
      }
      return;
    } catch (error) {
      if (signal.aborted || isAbort(error)) return;
      on.failed(describeFailure(error));
      if (resumeAfter === undefined) return;
      await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
    }
  }
}
