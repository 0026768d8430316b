/** The host's process signals: SIGTERM and SIGINT stop it, SIGHUP reloads its credentials. */
import type { Logger } from "pino";
import type { HostCredentials } from "../auth/credentials.js";

export interface StopSignalOptions {
  /** Starts the graceful shutdown (idempotent). */
  stop(): Promise<void>;
  /** A second signal: cancel the calls in flight now. */
  impatient(): void;
  /** After the shutdown finished. */
  onStopped(): void;
  readonly graceMs: number;
  readonly log: Logger;
}

/** Stops gracefully on SIGTERM/SIGINT; a second signal cancels in-flight calls at once; a failed shutdown exits 1. */
export function handleStopSignals(options: StopSignalOptions): void {
  const { log } = options;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn({ signal }, "second signal: cancelling in-flight calls now");
      options.impatient();
      return;
    }
    signalled = true;
    log.info({ signal, graceMs: options.graceMs }, "shutting down gracefully");
    options.stop().then(options.onStopped, (error: unknown) => {
      log.error({ err: error }, "shutdown failed");
      process.exit(1);
    });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/**
 * Reloads `credentials` on SIGHUP while the host runs, when it has files to read again;
 * returns what stops listening.
 */
export function reloadOnHangup(credentials: HostCredentials): () => void {
  if (!credentials.reloadable) return () => {};
  const onHangup = () => credentials.reload();
  process.on("SIGHUP", onHangup);
  return () => process.removeListener("SIGHUP", onHangup);
}
