/** Data the pages poll or share: the host's description and the caller's sessions. */
import { createContext, useContext, useEffect, useRef, useState } from "react";
import { describeFailure, host, ok, type PageConfig } from "./api/client";
import type { DescribeHostResponse, SessionInfo } from "./gen/toolbridge/v1/toolbridge_pb";

export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: string | undefined;
  /** Loads again now. */
  reload(): void;
}

/**
 * Calls `load` now and every `intervalMs` (0: once), keeping the latest answer; a call in
 * flight when the component goes or `deps` change is aborted.
 */
export function usePolling<T>(
  load: (signal: AbortSignal) => Promise<T>,
  intervalMs: number,
  deps: unknown[],
): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [round, setRound] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  // biome-ignore lint/correctness/useExhaustiveDependencies: `deps` are the caller's, `round` forces a reload.
  useEffect(() => {
    const controller = new AbortController();
    let timer: number | undefined;
    const run = async () => {
      try {
        const value = await loader.current(controller.signal);
        if (!controller.signal.aborted) {
          setData(value);
          setError(undefined);
        }
      } catch (failure) {
        if (!controller.signal.aborted) setError(describeFailure(failure));
      }
      if (intervalMs > 0 && !controller.signal.aborted) timer = window.setTimeout(run, intervalMs);
    };
    void run();
    return () => {
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [...deps, intervalMs, round]);
  return { data, error, reload: () => setRound((n) => n + 1) };
}

/** What every page may need: the host's description, who the caller is, and where the host is. */
export interface HostContext {
  readonly description: DescribeHostResponse | undefined;
  readonly config: PageConfig | undefined;
  readonly error: string | undefined;
  /** Reloads everything (after the token changed). */
  refresh(): void;
}

export const HostInfo = createContext<HostContext>({
  description: undefined,
  config: undefined,
  error: undefined,
  refresh: () => {},
});

export function useHostInfo(): HostContext {
  return useContext(HostInfo);
}

/**
 * The first 100 sessions the caller may see, for the session pickers, refreshed every 10 s
 * while `wanted` (a picker is open, or has nothing picked): listing them costs the host a
 * store read per session, which a page that does not show them should not ask for.
 */
export function useSessionList(wanted: boolean): Loaded<SessionInfo[] | undefined> {
  return usePolling(
    async (signal) =>
      wanted ? ok(await host.listSessions({ pageSize: 100 }, { signal })).sessions : undefined,
    wanted ? 10_000 : 0,
    [wanted],
  );
}
