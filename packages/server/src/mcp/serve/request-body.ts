/** Reading a POSTed JSON-RPC body once, within the message limit. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { jsonRpcError } from "./http-replies.js";

/**
 * The parsed JSON body of `req`; undefined when it was refused (answered here: 413 over
 * `limit` bytes, 400 for text that is not JSON).
 */
export async function readJsonBody(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
): Promise<{ value: unknown } | undefined> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) {
    tooLarge(res, limit);
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      tooLarge(res, limit);
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return { value: JSON.parse(Buffer.concat(chunks, size).toString("utf8")) as unknown };
  } catch {
    jsonRpcError(res, 400, -32700, "Parse error: the body is not JSON");
    return undefined;
  }
}

function tooLarge(res: ServerResponse, limit: number): void {
  jsonRpcError(
    res,
    413,
    -32000,
    `the request is over the host's ${limit}-byte message limit (maxMessageBytes)`,
    { connection: "close" },
  );
}

/** A body-less web Request with `req`'s method, URL and headers: enough to classify a parsed body's era. */
export function headersOnly(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith(":")) continue;
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else headers.set(name, value);
  }
  return new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
    method: req.method ?? "POST",
    headers,
  });
}
