/**
 * Transport security of the host's port: TLS (and mTLS) credentials from the configured
 * files, and the safe-default rule that a port reachable from other machines needs TLS
 * or authentication unless the operator says `insecure` on purpose.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType } from "@toolbridge/core";

export interface TlsSettings {
  /** PEM certificate chain of the host; empty for plaintext. */
  readonly tlsCert: string;
  /** PEM private key of that certificate. */
  readonly tlsKey: string;
  /** PEM CA bundle: when set, clients must present a certificate it signed (mTLS). */
  readonly tlsClientCa: string;
}

function readPem(key: keyof TlsSettings, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `cannot read ${key} ${path}: ${(error as Error).message}`,
      {
        details: { field: key },
      },
    );
  }
}

/** True when the settings turn TLS on. */
export function tlsEnabled(settings: TlsSettings): boolean {
  return settings.tlsCert !== "" || settings.tlsKey !== "";
}

/**
 * The credentials the host's port is bound with: plaintext, TLS, or with `tlsClientCa`
 * TLS requiring a client certificate signed by that CA. Throws ValidationError naming a
 * setting that is missing or a file that cannot be read.
 */
export function serverCredentials(settings: TlsSettings): grpc.ServerCredentials {
  if (!tlsEnabled(settings)) {
    if (settings.tlsClientCa !== "") {
      throw new BridgeError(
        ErrorType.ValidationError,
        "tlsClientCa (client certificates) needs TLS: set tlsCert and tlsKey too",
        { details: { field: "tlsClientCa" } },
      );
    }
    return grpc.ServerCredentials.createInsecure();
  }
  for (const key of ["tlsCert", "tlsKey"] as const) {
    if (settings[key] === "") {
      throw new BridgeError(ErrorType.ValidationError, "TLS needs both tlsCert and tlsKey (PEM files)", {
        details: { field: key },
      });
    }
  }
  const keyPair = {
    cert_chain: readPem("tlsCert", settings.tlsCert),
    private_key: readPem("tlsKey", settings.tlsKey),
  };
  const clientCa = settings.tlsClientCa === "" ? null : readPem("tlsClientCa", settings.tlsClientCa);
  try {
    return grpc.ServerCredentials.createSsl(clientCa, [keyPair], clientCa !== null);
  } catch (error) {
    throw new BridgeError(ErrorType.ValidationError, `invalid TLS files: ${(error as Error).message}`, {
      details: { field: "tlsCert" },
    });
  }
}

/** True for an interface only this machine can reach: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (bare === "localhost") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  return bare === "::1" || bare === "0:0:0:0:0:0:0:1" || bare === "::ffff:127.0.0.1";
}

/** Whether `host` names a Unix domain socket (`unix:/path`, `unix:relative/path`) rather than an interface. */
export function isUnixAddress(host: string): boolean {
  return host.startsWith("unix:");
}

export interface Exposure {
  /** The gRPC interface and port. */
  readonly host: string;
  readonly port: number;
  /** The metrics endpoint's interface, when it is served. */
  readonly metricsHost: string | undefined;
  readonly tls: boolean;
  readonly authentication: boolean;
  readonly insecure: boolean;
}

/**
 * Refuses to serve where other machines could reach the host with neither TLS nor
 * authentication, unless `insecure` is set (the Redis "protected mode" rule): such a
 * host would let anyone on the network use every session.
 */
export function checkExposure(exposure: Exposure): void {
  if (exposure.insecure || exposure.tls || exposure.authentication) return;
  // A Unix domain socket (unix:/path) is reachable only from this machine, as loopback is.
  const open = [exposure.host, exposure.metricsHost].filter(
    (host): host is string => host !== undefined && !isLoopback(host) && !isUnixAddress(host),
  );
  if (open.length === 0) return;
  throw new BridgeError(
    ErrorType.ValidationError,
    `refusing to listen on ${open.join(" and ")}, reachable from other machines, without TLS or ` +
      "authentication: anyone who can reach the port could use every session. Serve TLS (--tls-cert, " +
      "--tls-key) and require tokens (--auth-tokens-file) or client certificates (--tls-client-ca); or " +
      "listen on 127.0.0.1 (the default); or, inside a network you control, pass --insecure true",
    { details: { field: "host" } },
  );
}
