/**
 * The host names the MCP endpoint answers to (its defence against DNS rebinding: a page on
 * another site whose name resolves to this machine sends that name as Host, and is refused).
 */
import { hostname, networkInterfaces } from "node:os";
import { localhostAllowedHostnames } from "@modelcontextprotocol/server";
import { isLoopback } from "../../auth/transport.js";

export interface HttpExposure {
  /** The interface the endpoint listens on. */
  readonly host: string;
  readonly port: number;
  /** Host names clients reach the endpoint by, beyond those derived from `host`. */
  readonly allowedHosts: readonly string[];
  /** Hostnames of the web origins whose pages may call the endpoint (browsers send Origin). */
  readonly allowedOrigins: readonly string[];
}

/**
 * localhost's names on a loopback interface; on another, that interface's address (every
 * address of the machine and its host name for a wildcard bind); always `allowedHosts`.
 */
export function allowedHostnames(exposure: HttpExposure): string[] {
  const names = new Set<string>(exposure.allowedHosts.map(bracketed));
  if (isLoopback(exposure.host)) {
    for (const name of localhostAllowedHostnames()) names.add(name);
    return [...names];
  }
  if (exposure.host === "0.0.0.0" || exposure.host === "::") {
    names.add(hostname());
    for (const addresses of Object.values(networkInterfaces())) {
      for (const address of addresses ?? []) names.add(bracketed(address.address));
    }
    for (const name of localhostAllowedHostnames()) names.add(name);
  } else {
    names.add(bracketed(exposure.host));
  }
  return [...names];
}

/** IPv6 addresses are written in brackets in a Host header. */
function bracketed(name: string): string {
  return name.includes(":") && !name.startsWith("[") ? `[${name}]` : name;
}
