/**
 * What a failure of Redis means for the store, and what to tell the user. Only what heals by
 * itself (a lost connection, a failover in progress, a Redis loading its data, a cluster
 * reconfiguring) is Unavailable with `retriable = "true"`; a store URL that reaches the wrong
 * kind of Redis, a password Redis refuses, a replica where the master belongs, or a Redis
 * that refuses the store's scripts is Unavailable with `retriable = "false"` and a message
 * naming what to change, and the host refuses to start on it (connection.ts verify()).
 */
import { BridgeError, ErrorType } from "@toolbridge/core";
import { clusterUrl, type RedisMode, URL_FORMS } from "./target.js";

/** `details.fault` of the store's Unavailable errors. */
export type StoreFault =
  // Heal by themselves: retriable.
  | "unreachable"
  | "timeout"
  | "failover"
  | "loading"
  | "cluster_down"
  | "replica_ack"
  | "error_reply"
  // Configuration: what to change is in the message.
  | "cluster_node"
  | "not_a_cluster"
  | "auth"
  | "permission"
  | "read_only_replica"
  | "scripts_refused"
  | "unknown_master"
  | "unsupported";

const CONFIGURATION: ReadonlySet<StoreFault> = new Set([
  "cluster_node",
  "not_a_cluster",
  "auth",
  "permission",
  "read_only_replica",
  "scripts_refused",
  "unknown_master",
  "unsupported",
]);

export interface FaultContext {
  readonly mode: RedisMode;
  /** The store URL without its passwords. */
  readonly where: string;
}

/**
 * A write applied by the master but confirmed by fewer replicas than the wait setting asks
 * (storeWaitReplicas) within its time (storeWaitTimeoutMs): a failover now could lose it.
 */
export class ReplicaAckError extends Error {
  constructor(
    readonly acknowledged: number,
    readonly wanted: number,
    readonly timeoutMs: number,
  ) {
    super(`WAIT ${wanted} ${timeoutMs}: ${acknowledged} replica(s) acknowledged the write`);
    this.name = "ReplicaAckError";
  }
}

/** A fault of the store: what happened, and what to do about it. */
export interface Classified {
  readonly fault: StoreFault;
  /** The situation in the store's terms, e.g. "is a node of a Redis Cluster". */
  readonly what: string;
  /** What to change (a configuration fault) or do. */
  readonly advice: string;
}

export function isConfigurationFault(fault: StoreFault): boolean {
  return CONFIGURATION.has(fault);
}

/** The first word of a Redis error reply, or of ioredis's message about one ("Too many Cluster redirections. Last error: ..."). */
function replyCode(message: string): string {
  const last = /Last error: (?:ReplyError: )?([A-Z]+)\b/.exec(message);
  return last?.[1] ?? /^([A-Z]+)\b/.exec(message)?.[1] ?? "";
}

/**
 * Classifies an error of a command, of a connection (ioredis's error event) or of a
 * sentinel. `connection` is the last error the connection reported before a command failed
 * with only "Connection is closed." (how a refused password reaches commands).
 */
export function classify(error: unknown, context: FaultContext, connection?: Error): Classified {
  if (error instanceof ReplicaAckError) {
    return {
      fault: "replica_ack",
      what:
        `applied the write, but only ${error.acknowledged} of the ${error.wanted} replica(s) it waits for ` +
        `(storeWaitReplicas) confirmed it within ${error.timeoutMs} ms, so a failover now could lose it`,
      advice: "re-read before repeating a write that is not idempotent, once the replicas are back",
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  if (connection !== undefined && isConnectionLoss(message)) {
    const cause = classify(connection, context);
    if (isConfigurationFault(cause.fault)) return cause;
  }
  const nested = (error as { lastNodeError?: Error } | undefined)?.lastNodeError;
  if (nested !== undefined) {
    const cause = classify(nested, context);
    if (cause.fault !== "unreachable") return cause;
  }
  return classifyMessage(message, context);
}

function classifyMessage(message: string, { mode, where }: FaultContext): Classified {
  const code = replyCode(message);
  const text = message.slice(0, 200);
  switch (code) {
    case "MOVED":
    case "ASK":
      if (mode === "cluster") return retry("cluster_down", "is moving slots between its nodes");
      return configuration(
        "cluster_node",
        `is a node of a Redis Cluster (it answered ${text})`,
        `use ${clusterUrl(where)} (naming more of its nodes after commas) to reach the cluster`,
      );
    case "WRONGPASS":
    case "NOAUTH":
      return configuration(
        "auth",
        `refused the store's credentials (${text})`,
        passwordAdvice(mode, /sentinel/i.test(message)),
      );
    case "NOPERM":
      return configuration(
        "permission",
        `refused a command to the store's Redis user (${text})`,
        "let the user run every command on the store's keys and channels (e.g. ACL SETUSER <user> +@all ~toolbridge:* &toolbridge:*)",
      );
    case "READONLY":
      if (mode !== "single") return retry("failover", "is a replica now (a failover is in progress)");
      return configuration(
        "read_only_replica",
        "is a read-only replica",
        `point the store at the master, or use ${URL_FORMS.sentinel} to follow failovers`,
      );
    case "NOSCRIPT":
      return configuration(
        "scripts_refused",
        `refused the store's Lua scripts (${text})`,
        "use a Redis that runs EVAL and EVALSHA: the store commits every write with a script",
      );
    case "LOADING":
      return retry("loading", "is loading its data");
    case "MASTERDOWN":
    case "UNBLOCKED":
      return retry("failover", "has lost its master (a failover is in progress)");
    case "CLUSTERDOWN":
    case "TRYAGAIN":
      return retry("cluster_down", "is reconfiguring (the cluster is down or moving slots)");
    case "BUSY":
      return retry("error_reply", "is busy running a script");
    case "CROSSSLOT":
      // The key layout keeps every script's keys in one slot: this is a bug, not a fault of Redis.
      throw new BridgeError(
        ErrorType.InternalError,
        `the session store sent keys of several slots in one command (${text})`,
      );
    default:
      return classifyOther(message, text, { mode, where });
  }
}

function classifyOther(message: string, text: string, { mode }: FaultContext): Classified {
  if (/cluster support disabled/.test(message)) {
    return configuration(
      "not_a_cluster",
      "is not a Redis Cluster (cluster support disabled)",
      `use ${URL_FORMS.single} for one Redis, or ${URL_FORMS.sentinel} for a Sentinel group`,
    );
  }
  if (/unknown command '(eval|evalsha|script)'/i.test(message)) {
    return configuration(
      "scripts_refused",
      `refused the store's Lua scripts (${text})`,
      "use a Redis that runs EVAL and EVALSHA: the store commits every write with a script",
    );
  }
  if (/^ERR unknown command/i.test(message)) {
    return configuration(
      "unsupported",
      `does not know a command the store uses (${text})`,
      "use Redis 7.0 or later",
    );
  }
  if (/invalid password|invalid username-password|without any password configured/i.test(message)) {
    return configuration(
      "auth",
      `refused the store's credentials (${text})`,
      passwordAdvice(mode, /sentinel/i.test(message)),
    );
  }
  if (/No such master with that name|successfully, but got an invalid reply: null/.test(message)) {
    return configuration(
      "unknown_master",
      "has sentinels that know no master group of that name",
      "name the group as the sentinels monitor it (sentinel monitor <group> ...) after the sentinels in the URL",
    );
  }
  if (message === "Command timed out") return retry("timeout", "did not answer in time");
  // Any other error reply (OOM, MISCONF, ...) is Redis's to fix and may pass.
  if (/^[A-Z]{2,}[A-Z_]* /.test(message)) return retry("error_reply", `answered with an error: ${text}`);
  return retry("unreachable", "is unreachable");
}

/** An error that only says the connection went away; the reason, if any, came as an error event before it. */
function isConnectionLoss(message: string): boolean {
  return /Connection is closed|Stream isn't writeable|max retries per request|None of startup nodes is available|Failed to refresh slots cache/.test(
    message,
  );
}

function passwordAdvice(mode: RedisMode, sentinel: boolean): string {
  if (sentinel) return "fix sentinelUsername and sentinelPassword in the store URL (?sentinelPassword=...)";
  const form =
    mode === "cluster"
      ? "redis+cluster://user:password@host:port,..."
      : mode === "sentinel"
        ? "redis+sentinel://user:password@host:port,.../<group>"
        : "redis://user:password@host:port/db";
  return `fix the user and password in the store URL (${form}; percent-encode special characters)`;
}

function retry(fault: StoreFault, what: string): Classified {
  return { fault, what, advice: "retry in a moment" };
}

function configuration(fault: StoreFault, what: string, advice: string): Classified {
  return { fault, what, advice };
}

/** The store's Unavailable error for a classified fault. */
export function unavailable(classified: Classified, context: FaultContext, error: unknown): BridgeError {
  if (error instanceof BridgeError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  const configurationFault = isConfigurationFault(classified.fault);
  return new BridgeError(
    ErrorType.Unavailable,
    `the session store (Redis at ${context.where}) ${classified.what}; ${classified.advice}`,
    {
      details: {
        store: "redis",
        fault: classified.fault,
        reason: reason.slice(0, 200),
        retriable: configurationFault ? "false" : "true",
      },
      cause: error,
    },
  );
}

/** The error a host refuses to start with: the configuration fault, as a ValidationError of `store`. */
export function startupError(classified: Classified, context: FaultContext): BridgeError {
  return new BridgeError(
    ErrorType.ValidationError,
    `the session store (Redis at ${context.where}) ${classified.what}: ${classified.advice}`,
    { details: { field: "store", fault: classified.fault } },
  );
}
