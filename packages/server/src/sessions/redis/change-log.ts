/**
 * A session's changes as the Redis store keeps and sends them: the log stream `{id}:log`
 * (read to resume a watch or to fill a gap in a feed) and the messages published on
 * `{id}:changes`, both written by the COMMIT script (scripts/variables.ts).
 */
import { pb } from "@toolbridge/core";
import { historyTrimmed, resumeAhead, sessionNotFound } from "../errors.js";
import type { ChangeHistory, VariableChange, VariableMutationResult } from "../variable-store.js";
import type { RedisConnection } from "./connection.js";
import { READ_LOG } from "./scripts/variables.js";

/** Log entries read per round trip when resuming a watch or filling a gap. */
export const LOG_PAGE = 256;

export class RedisChangeLog {
  constructor(private readonly redis: RedisConnection) {
    redis.define(READ_LOG);
  }

  /** Up to `count` changes after `after`, and the session's last sequence. Throws SessionNotFound. */
  async read(
    sessionId: string,
    after: bigint,
    count: number,
  ): Promise<{ sequence: bigint; changes: VariableChange[] }> {
    const { keys } = this.redis;
    const reply = (await this.redis.run(
      READ_LOG,
      [keys.meta(sessionId), keys.log(sessionId)],
      [`${after + 1n}-0`, count],
    )) as [Buffer, [Buffer, Buffer[]][]] | null;
    if (reply === null) throw sessionNotFound(sessionId);
    const changes = reply[1].map(([id, fields]) => logChange(sessionId, String(id), fields));
    return { sequence: BigInt(String(reply[0])), changes };
  }

  /** Every change after `after` up to the last one (VariableStore.changesSince). */
  async since(sessionId: string, after: bigint): Promise<ChangeHistory> {
    const first = await this.read(sessionId, after, LOG_PAGE);
    if (after > first.sequence) throw resumeAhead(sessionId, after, first.sequence);
    const changes = [...first.changes];
    if (after < first.sequence && changes[0]?.sequence !== after + 1n) {
      throw historyTrimmed(sessionId, after, changes[0]?.sequence ?? first.sequence + 1n);
    }
    let last = changes.at(-1)?.sequence ?? after;
    while (last < first.sequence) {
      const page = await this.read(sessionId, last, LOG_PAGE);
      if (page.changes[0]?.sequence !== last + 1n) {
        throw historyTrimmed(sessionId, after, page.changes[0]?.sequence ?? page.sequence + 1n);
      }
      for (const change of page.changes) if (change.sequence <= first.sequence) changes.push(change);
      last = changes.at(-1)?.sequence ?? last;
    }
    return { changes, sequence: first.sequence };
  }
}

/** The sequence of a published change, read without decoding the rest. */
export function publishedSequence(message: Buffer): bigint {
  return BigInt(message.subarray(0, message.indexOf(0x7c)).toString("latin1"));
}

/** A change as COMMIT publishes it: "<sequence>|<kind>|<version>|<name>|<encoded variable>". */
export function publishedChange(sessionId: string, message: Buffer): VariableChange {
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < 4; i++) {
    const end = message.indexOf(0x7c, start);
    fields.push(message.toString("latin1", start, end));
    start = end + 1;
  }
  const [sequence = "0", kind = "", version = "0", name = ""] = fields;
  return changeOf(sessionId, BigInt(sequence), kind, name, version, message.subarray(start));
}

/** A change as COMMIT logs it: entry "<sequence>-0" with fields k, n, v, b. */
function logChange(sessionId: string, id: string, fields: Buffer[]): VariableChange {
  const byName = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) byName.set(String(fields[i]), fields[i + 1] as Buffer);
  return changeOf(
    sessionId,
    BigInt(id.slice(0, id.indexOf("-"))),
    String(byName.get("k")),
    String(byName.get("n")),
    String(byName.get("v")),
    byName.get("b") ?? Buffer.alloc(0),
  );
}

function changeOf(
  sessionId: string,
  sequence: bigint,
  kind: string,
  name: string,
  version: string,
  encoded: Uint8Array,
): VariableChange {
  const result: VariableMutationResult =
    kind === "s"
      ? { kind: "set", variable: pb.Variable.decode(encoded), bytes: encoded.length }
      : { kind: "deleted", version: BigInt(version) };
  return { sessionId, name, sequence, result };
}
