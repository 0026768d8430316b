/** The few answers the MCP endpoint gives itself, before a request reaches the SDK. */
import type { ServerResponse } from "node:http";

/** A JSON-RPC error with no request id, as HTTP status `status`. */
export function jsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res
    .writeHead(status, { "content-type": "application/json", ...headers })
    .end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}
