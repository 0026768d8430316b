/**
 * `toolbridge inspect <address>`: the web inspector for any running host, on a loopback
 * port of this machine. The page's calls go to the host as a client's would, with the
 * token given here (or one typed into the page).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType } from "@toolbridge/core";
import { isLoopback } from "../auth/transport.js";
import { DEFAULT_CONFIG } from "../config.js";
import type { InspectorGateway } from "./gateway.js";

export const INSPECT_USAGE = `Usage: toolbridge inspect <address> [options]

Serves the web inspector of the host at <address> (host:port, or unix:/path) on this machine
and prints the URL to open. The page sees what the token may see; an operator token sees
every session (docs/inspector.md).

Options:
  --token <token>              bearer token for a host that authenticates (env TOOLBRIDGE_TOKEN);
                               the page may also be given another one
  --tls                        reach the host over TLS, checking its certificate with the system's roots
  --tls-ca <file>              ... with this PEM CA bundle instead (implies --tls)
  --tls-cert <file>            client certificate (PEM) for a host that requires one, with --tls-key
  --tls-key <file>
  --tls-server-name <name>     the name to check the host's certificate against
  --host <interface>           where the inspector listens (default 127.0.0.1)
  --port <port>                its port (default 0: a free one)
  --insecure true              allow --host other than loopback: whoever reaches that port acts
                               with --token on the host
  --max-message-bytes <n>      largest message to or from the host (default ${DEFAULT_CONFIG.maxMessageBytes})`;

function usageError(message: string): BridgeError {
  return new BridgeError(ErrorType.ValidationError, `${message}\n${INSPECT_USAGE}`);
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw usageError(`cannot read ${flag} ${path}: ${(error as Error).message}`);
  }
}

/** How to reach the host: plaintext, or TLS when any TLS option is given. */
function channelCredentials(values: Record<string, unknown>): {
  credentials: grpc.ChannelCredentials;
  secure: boolean;
} {
  const ca = typeof values["tls-ca"] === "string" ? readPem(values["tls-ca"], "--tls-ca") : undefined;
  const cert = typeof values["tls-cert"] === "string" ? readPem(values["tls-cert"], "--tls-cert") : undefined;
  const key = typeof values["tls-key"] === "string" ? readPem(values["tls-key"], "--tls-key") : undefined;
  if ((cert === undefined) !== (key === undefined)) throw usageError("--tls-cert and --tls-key go together");
  if (values.tls !== true && ca === undefined && cert === undefined) {
    return { credentials: grpc.credentials.createInsecure(), secure: false };
  }
  return { credentials: grpc.credentials.createSsl(ca ?? null, key ?? null, cert ?? null), secure: true };
}

/** Parses the arguments after `inspect` and starts the inspector; it serves until the process ends. */
export async function inspectCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<InspectorGateway> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        token: { type: "string" },
        tls: { type: "boolean" },
        "tls-ca": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "tls-server-name": { type: "string" },
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "0" },
        insecure: { type: "string", default: "false" },
        "max-message-bytes": { type: "string", default: String(DEFAULT_CONFIG.maxMessageBytes) },
      },
    });
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [address, ...extra] = positionals;
  if (address === undefined || extra.length > 0) throw usageError("inspect takes exactly one <address>");
  const host = String(values.host);
  const port = Number(values.port);
  const maxMessageBytes = Number(values["max-message-bytes"]);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw usageError(`--port ${values.port} is not a port`);
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1024) {
    throw usageError("--max-message-bytes needs a whole number of at least 1024");
  }
  if (!isLoopback(host) && values.insecure !== "true") {
    throw usageError(
      `refusing to serve the inspector on ${host}, reachable from other machines: whoever reaches it ` +
        "would use the host with this inspector's token. Keep the default 127.0.0.1 (an SSH tunnel reaches " +
        "it from elsewhere), serve it from the host itself over TLS (inspectorPort), or pass --insecure true",
    );
  }
  const token = typeof values.token === "string" ? values.token : env.TOOLBRIDGE_TOKEN || undefined;
  const serverName = values["tls-server-name"];
  const { credentials, secure } = channelCredentials(values);
  const { startGateway } = await import("./gateway.js");
  return startGateway({
    target: address,
    credentials,
    ...(typeof serverName === "string" ? { serverName } : {}),
    maxMessageBytes,
    host,
    port,
    ...(token === undefined ? {} : { token }),
    displayTls: secure,
  });
}
