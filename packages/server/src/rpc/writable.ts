import type { EventEmitter } from "node:events";

/**
 * Resolves when a server stream can take more data, or when the client is gone: the
 * back-pressure wait of every server-streaming RPC (write() returned false).
 */
export function writable(call: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.removeListener("drain", done);
      call.removeListener("cancelled", done);
      call.removeListener("close", done);
      resolve();
    };
    call.once("drain", done);
    call.once("cancelled", done);
    call.once("close", done);
  });
}
