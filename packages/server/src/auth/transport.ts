/**
 * Where the host's port can be reached from, and the safe-default rule that a port
 * reachable from other machines needs TLS or authentication unless the operator says
 * `insecure` on purpose. (The TLS files themselves: certificates.ts.)
 */
import { isIP } from "node:net";
import { BridgeError, ErrorType } from "@toolbridge/core";

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
