/**
 * Principals: who a call is made by. With authentication on, every RPC carries one (a
 * bearer token's, a client certificate's subject, or the embedding application's own
 * check); a session belongs to the principal that created it and does not exist for
 * anyone else. Without authentication every caller is the same anonymous principal.
 */

/** How a caller was identified. */
export type PrincipalKind = "anonymous" | "token" | "certificate" | "hook" | "host";

export interface Principal {
  /** The name sessions are owned by (and, when authenticated, writes are recorded as). */
  readonly name: string;
  readonly kind: PrincipalKind;
  /**
   * The operator role: the principal may use every session, whoever owns it (to look at a
   * live host: ListSessions, the inspector). Granted by an `operator <principal>` line of the
   * tokens file or by the authentication hook; never to the anonymous principal.
   */
  readonly operator?: boolean;
}

/** Every caller of a host without authentication; owns the sessions created then. */
export const ANONYMOUS: Principal = Object.freeze({ name: "@anonymous", kind: "anonymous" });

/**
 * The host itself: its TypeScript API, its own Python workers and the agents it spawns.
 * It may use every session, as the application that embeds the host owns them all.
 */
export const HOST: Principal = Object.freeze({ name: "@host", kind: "host" });

const MAX_NAME = 256;

/**
 * Checks a principal name coming from a tokens file, a certificate or the authentication
 * hook: 1-256 printable characters, not starting with "@" (reserved for the host's own
 * principals, so no token can be made to act as the host).
 */
export function principalNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_NAME) return `a principal name needs 1-${MAX_NAME} characters`;
  if (name.startsWith("@")) return `principal names starting with '@' are reserved (${JSON.stringify(name)})`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
  if (/[\u0000-\u001f\u007f]/.test(name)) return "a principal name may not hold control characters";
  return undefined;
}

/** True when `principal` may use every session: the host itself, or a principal with the operator role. */
export function seesEverySession(principal: Principal): boolean {
  return principal.kind === "host" || principal.operator === true;
}

/** True when `principal` may use a session owned by `owner`. */
export function mayUse(principal: Principal, owner: string): boolean {
  return seesEverySession(principal) || principal.name === owner;
}

/**
 * True for principals that per-principal quotas apply to: authenticated callers. The
 * anonymous principal is every caller at once and the host is the application itself;
 * the host-wide limits bound both.
 */
export function hasQuotas(principal: Principal): boolean {
  return principal.kind !== "anonymous" && principal.kind !== "host";
}

/**
 * What `created_by`/`updated_by` record for a write: the authenticated principal, or
 * for an anonymous caller or the host itself the writer's own name (python, typescript).
 */
export function recordedWriter(principal: Principal, claimed: string): string {
  return principal.kind === "anonymous" || principal.kind === "host" ? claimed : principal.name;
}
