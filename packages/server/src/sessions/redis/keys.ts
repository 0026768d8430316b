/**
 * The key layout of the Redis store: every key and channel name, in one place
 * (docs/stores.md#keys shows it with the default prefix "toolbridge:").
 *
 * Keys of a session carry the hash tag {<session id>}, so they live in one Cluster slot; in
 * the order every per-session script takes them (session()):
 *   KEYS[1] meta  hash: id, md (metadata JSON), created, last (ms), seq, floor, inc, owner,
 *                 oq ('1' when the session counts in its owner's index), bytes (of all
 *                 encoded variables), lb (of the log's entries, as `logz` counts them), rb
 *                 (of the call records: each one's value and request id)
 *   KEYS[2] vars  hash: variable name -> encoded pb.Variable
 *   KEYS[3] ver   hash: variable name -> version (decimal), compared by the commit
 *   KEYS[4] gone  sorted set: deleted name -> its last version (tombstones)
 *   KEYS[5] log   stream of changes, entry id "<sequence>-0"
 *   KEYS[6] calls hash: request id -> "r|<node>|<until ms>|<fingerprint>" (a claim) or
 *                 "d|<fingerprint>|<ToolCallResult>" (a record); the fingerprint is hex
 *   KEYS[7] callt sorted set: request id of a record -> its completion time (ms)
 *   KEYS[8] tools hash: session tool name -> "<node>|<ToolSpec>" (the node serving it)
 *   KEYS[9] logz  list: the bytes of each entry of `log`, oldest first (an encoded variable,
 *                 or a deleted name and 16), so the log can be trimmed to a byte budget
 *
 * Global keys: the session index and the owners' indexes (one slot, by the index's name as
 * hash tag), a tool's rate window, a node's directory entry, the peer token. Channels: the
 * session ends (global) and each session's changes.
 */
import calculateSlot from "cluster-key-slot";

/** The Redis Cluster slot (0-16383) of a key or shard channel: of its hash tag {...} when it has one. */
export function keySlot(key: string): number {
  return calculateSlot(key);
}

export class RedisKeys {
  /** The session ends, for every node: "<id>|<reason>|<node that ended it>". */
  readonly endedChannel: string;
  /** The global session index: session id -> expiry (ms). */
  readonly index: string;
  /** The token the nodes forward calls to each other with. */
  readonly peerToken: string;

  /** `prefix` starts every key and channel, so that several deployments can share one Redis. */
  constructor(readonly prefix: string) {
    this.endedChannel = `${prefix}ended`;
    this.index = `${prefix}sessions`;
    this.peerToken = `${prefix}peer-token`;
  }

  /** Every key of the session, in the order above (SESSION_KEYS of them). */
  session(id: string): string[] {
    const meta = this.meta(id);
    return [
      meta,
      `${meta}:vars`,
      `${meta}:ver`,
      `${meta}:gone`,
      `${meta}:log`,
      `${meta}:calls`,
      `${meta}:callt`,
      `${meta}:tools`,
      `${meta}:logz`,
    ];
  }

  meta(id: string): string {
    return `${this.prefix}{${id}}`;
  }

  vars(id: string): string {
    return `${this.prefix}{${id}}:vars`;
  }

  log(id: string): string {
    return `${this.prefix}{${id}}:log`;
  }

  /** The keys of the call record scripts: meta, calls, callt. */
  calls(id: string): string[] {
    const meta = this.meta(id);
    return [meta, `${meta}:calls`, `${meta}:callt`];
  }

  /** The keys of the session tool script: meta, tools. */
  tools(id: string): string[] {
    const meta = this.meta(id);
    return [meta, `${meta}:tools`];
  }

  /**
   * The sessions `owner` owns (id -> expiry). Its hash tag is the global index's name, so
   * both live in one Cluster slot and one script counts against both limits.
   */
  owner(owner: string): string {
    return `${this.prefix}owner:{${this.index}}:${owner}`;
  }

  /** A rate-limited tool's window of start times. */
  rate(tool: string): string {
    return `${this.prefix}rate:{${tool}}`;
  }

  /** A node's directory entry. */
  node(node: string): string {
    return `${this.prefix}node:${node}`;
  }

  /** The channel a session's changes are published on. */
  changesChannel(id: string): string {
    return `${this.prefix}{${id}}:changes`;
  }
}
