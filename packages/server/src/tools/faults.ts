/**
 * Tool faults contained: an exception or promise rejection that escapes a tool (thrown
 * from a timer, a detached promise) reaches the process's `uncaughtException` /
 * `unhandledRejection` events, which by default end the process and with it every session
 * and stream. A started host listens to both. Each tool call runs inside an
 * AsyncLocalStorage scope (its ToolInvocation), which Node carries into the timers and
 * promises the tool creates, so the handler knows whose fault it is: that call fails with
 * ToolExecutionError if it is still running, the fault is logged with the tool's name, and
 * the host keeps serving.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "pino";

/**
 * What a fault did to the call it is charged to: failed it while it ran, or nothing, because
 * the call had already completed (its caller got the result) or had already failed.
 */
export type FaultOutcome =
  | { readonly kind: "failed" }
  | { readonly kind: "after-success" }
  | { readonly kind: "after-failure"; readonly errorType: string };

/** The call a fault is charged to. */
export interface FaultScope {
  readonly toolName: string;
  readonly sessionId: string;
  readonly requestId: string;
  /** Fails the call with the fault if it is still running; says what became of the call. */
  fault(error: unknown): FaultOutcome;
}

/** The tool call the running code belongs to (undefined outside tool code). */
export const toolScope = new AsyncLocalStorage<FaultScope>();

type FaultKind = "exception" | "rejection";

const loggers: Logger[] = [];

function report(kind: FaultKind, error: unknown): void {
  const log = loggers.at(-1);
  const scope = toolScope.getStore();
  const what = kind === "exception" ? "an exception" : "a promise rejection";
  if (scope === undefined) {
    log?.error({ err: error }, `${what} escaped outside any tool call; the host keeps serving`);
    return;
  }
  const outcome = scope.fault(error);
  log?.error(
    {
      err: error,
      tool: scope.toolName,
      sessionId: scope.sessionId,
      request_id: scope.requestId,
      call: outcome.kind,
    },
    `tool '${scope.toolName}' let ${what} escape (a timer or a detached promise); ${consequence(outcome)}, ` +
      "the host keeps serving",
  );
}

function consequence(outcome: FaultOutcome): string {
  switch (outcome.kind) {
    case "failed":
      return "its call fails with ToolExecutionError";
    case "after-success":
      return "its call had already completed successfully (this log is the only record of the fault)";
    case "after-failure":
      return `its call had already failed with ${outcome.errorType}`;
  }
}

const onException = (error: unknown) => report("exception", error);
const onRejection = (reason: unknown) => report("rejection", reason);

/**
 * Listens for faults escaping tools until the returned function is called; `log` gets
 * them (the latest host started in the process logs for all). Hosts in one process share
 * the listeners, installed while any of them runs.
 */
export function containToolFaults(log: Logger): () => void {
  if (loggers.length === 0) {
    process.on("uncaughtException", onException);
    process.on("unhandledRejection", onRejection);
  }
  loggers.push(log);
  let contained = true;
  return () => {
    if (!contained) return;
    contained = false;
    loggers.splice(loggers.indexOf(log), 1);
    if (loggers.length === 0) {
      process.removeListener("uncaughtException", onException);
      process.removeListener("unhandledRejection", onRejection);
    }
  };
}
