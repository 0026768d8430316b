/**
 * What a store URL names: one Redis, a Redis Cluster, or a master group watched by Sentinel
 * (docs/stores.md#cluster, #failover). The URL is parsed here once, into the settings the
 * clients are made with (clients.ts), and into `where`, the URL without its passwords, which
 * every message and log line shows.
 *
 *   redis://[user:password@]host:port/db                 one Redis (rediss:// for TLS)
 *   redis+cluster://[user:password@]host:port,host:port  a Redis Cluster, by some of its nodes
 *   redis+sentinel://[user:password@]host:port,host:port/<master group>[/db]
 *       [?sentinelUsername=...&sentinelPassword=...]     the master of a Sentinel group
 */
import { BridgeError, ErrorType } from "@toolbridge/core";

export type RedisMode = "single" | "cluster" | "sentinel";

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

interface Credentials {
  readonly username?: string;
  readonly password?: string;
  /** rediss: TLS to every Redis (and every sentinel). */
  readonly tls: boolean;
}

export type RedisTarget =
  | (Credentials & { readonly mode: "single"; readonly url: string })
  | (Credentials & { readonly mode: "cluster"; readonly nodes: readonly Endpoint[] })
  | (Credentials & {
      readonly mode: "sentinel";
      readonly sentinels: readonly Endpoint[];
      /** The master group's name, as in `sentinel monitor <name> ...`. */
      readonly group: string;
      readonly db: number;
      readonly sentinelUsername?: string;
      readonly sentinelPassword?: string;
    });

/** The URL forms, for messages that say which one to use. */
export const URL_FORMS = {
  single: "redis://host:port/db",
  cluster: "redis+cluster://host:port,host:port,...",
  sentinel: "redis+sentinel://host:port,host:port,.../<master group>",
} as const satisfies Record<RedisMode, string>;

const FORM = /^(rediss?)(\+cluster|\+sentinel)?:\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/;

/** Parses a store URL; throws BridgeError(ValidationError) saying which form to use. */
export function parseRedisTarget(url: string): RedisTarget {
  const match = FORM.exec(url);
  if (match === null) throw invalid(url, "it is not a Redis URL");
  const [, scheme = "", kind = "", userinfo, hosts = "", path = "", query = ""] = match;
  const credentials: Credentials = { ...userAndPassword(url, userinfo), tls: scheme === "rediss" };
  if (kind === "") {
    try {
      new URL(url);
    } catch {
      throw invalid(url, "it cannot be parsed");
    }
    if (hosts.includes(","))
      throw invalid(url, `several hosts need ${URL_FORMS.cluster} or ${URL_FORMS.sentinel}`);
    refuseQuery(url, query);
    return { ...credentials, mode: "single", url };
  }
  if (kind === "+cluster") {
    if (!/^\/?(0\/?)?$/.test(path))
      throw invalid(url, "a Redis Cluster has database 0 only: leave out the /db");
    refuseQuery(url, query);
    return { ...credentials, mode: "cluster", nodes: endpoints(url, hosts, 6379) };
  }
  const [, group = "", db = "0", ...rest] = path.split("/");
  if (group === "" || rest.length > 0 || !/^\d{1,5}$/.test(db)) {
    throw invalid(
      url,
      "name the master group after the sentinels, and optionally the db: .../<master group>[/db]",
    );
  }
  const options = new URLSearchParams(query);
  for (const key of options.keys()) {
    if (key !== "sentinelUsername" && key !== "sentinelPassword") {
      throw invalid(url, `unknown option '${key}': the options are sentinelUsername and sentinelPassword`);
    }
  }
  return {
    ...credentials,
    mode: "sentinel",
    sentinels: endpoints(url, hosts, 26379),
    group: decodeURIComponent(group),
    db: Number(db),
    ...optional("sentinelUsername", options.get("sentinelUsername")),
    ...optional("sentinelPassword", options.get("sentinelPassword")),
  };
}

/** The cluster form of a single Redis URL (as redacted), for the advice to use it. */
export function clusterUrl(where: string): string {
  const match = /^(rediss?):\/\/([^/?#]*)/.exec(where);
  return match === null ? URL_FORMS.cluster : `${match[1]}+cluster://${match[2]}`;
}

/** The URL without its passwords, for messages and logs. */
export function redactRedisUrl(url: string): string {
  const match = FORM.exec(url);
  if (match === null) return "redis (unparseable URL)";
  const [, scheme = "", kind = "", userinfo, hosts = "", path = "", query = ""] = match;
  let user = "";
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":");
    user = colon < 0 ? `${userinfo}@` : `${userinfo.slice(0, colon)}:***@`;
  }
  const options = new URLSearchParams(query);
  if (options.has("sentinelPassword")) options.set("sentinelPassword", "***");
  const shown = options.size > 0 ? `?${options.toString().replaceAll("%2A", "*")}` : "";
  return `${scheme}${kind}://${user}${hosts}${path}${shown}`;
}

function userAndPassword(
  url: string,
  userinfo: string | undefined,
): { username?: string; password?: string } {
  if (userinfo === undefined) return {};
  const colon = userinfo.indexOf(":");
  const user = decode(url, colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = colon < 0 ? undefined : decode(url, userinfo.slice(colon + 1));
  return { ...optional("username", user), ...optional("password", password) };
}

function endpoints(url: string, hosts: string, defaultPort: number): Endpoint[] {
  const list = hosts.split(",").map((entry) => {
    const parsed = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry);
    const port = Number(parsed?.[2] ?? defaultPort);
    if (parsed?.[1] === undefined || port < 1 || port > 65535) {
      throw invalid(url, `'${entry}' is not host:port`);
    }
    return { host: parsed[1].replace(/^\[(.*)\]$/, "$1"), port };
  });
  if (list.length === 0 || hosts === "") throw invalid(url, "it names no host");
  return list;
}

function refuseQuery(url: string, query: string): void {
  if (query !== "") throw invalid(url, "it takes no ?options");
}

function decode(url: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(url, "its user or password is not percent-encoded correctly");
  }
}

function optional<K extends string>(key: K, value: string | null | undefined): { [P in K]?: string } {
  return value === undefined || value === null || value === ""
    ? {}
    : ({ [key]: value } as { [P in K]: string });
}

function invalid(url: string, why: string): BridgeError {
  return new BridgeError(
    ErrorType.ValidationError,
    `invalid Redis URL ${JSON.stringify(redactRedisUrl(url))}: ${why}; use ${URL_FORMS.single} ` +
      `(rediss:// for TLS), ${URL_FORMS.cluster} or ${URL_FORMS.sentinel}`,
    { details: { field: "store" } },
  );
}
