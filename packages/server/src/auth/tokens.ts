/**
 * Bearer tokens: the tokens file (`--auth-tokens-file`) maps each token to a principal,
 * and grants the operator role to principals by name. Tokens are kept as SHA-256 digests
 * and every check compares the presented token's digest with all of them in constant time,
 * so neither the answer's timing nor a dump of the host's memory gives a token away.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { BridgeError, ErrorType } from "@toolbridge/core";
import { principalNameProblem } from "./principal.js";

/** Shorter tokens are refused: they could be guessed. */
export const MIN_TOKEN_LENGTH = 16;

interface Entry {
  readonly digest: Buffer;
  readonly principal: string;
}

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** An immutable set of tokens, each naming its principal, and the principals with the operator role. */
export class TokenTable {
  private readonly entries: readonly Entry[];
  /** Principal names with the operator role (`operator <principal>` lines). */
  readonly operators: ReadonlySet<string>;

  private constructor(entries: readonly Entry[], operators: ReadonlySet<string>) {
    this.entries = entries;
    this.operators = operators;
  }

  /**
   * A table from `[token, principal]` pairs and the names of `operators`; throws
   * ValidationError for a weak token or a bad name.
   */
  static of(
    pairs: Iterable<readonly [string, string]>,
    source = "tokens",
    operators: Iterable<string> = [],
  ): TokenTable {
    const entries: Entry[] = [];
    const seen = new Set<string>();
    for (const [token, principal] of pairs) {
      const problem = tokenProblem(token) ?? principalNameProblem(principal);
      if (problem !== undefined) throw invalidTokens(source, problem);
      const digest = digestOf(token);
      const key = digest.toString("hex");
      if (seen.has(key)) throw invalidTokens(source, `a token is listed twice (for ${principal})`);
      seen.add(key);
      entries.push({ digest, principal });
    }
    const roles = new Set<string>();
    for (const name of operators) {
      const problem = principalNameProblem(name);
      if (problem !== undefined) throw invalidTokens(source, `an operator line: ${problem}`);
      roles.add(name);
    }
    return new TokenTable(entries, roles);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The principal of `token`, or undefined. Takes the same time whichever entry matches, if any. */
  principalOf(token: string): string | undefined {
    const digest = digestOf(token);
    let found: string | undefined;
    for (const entry of this.entries) {
      // No early exit: the loop's duration must not depend on where (or whether) it matched.
      if (timingSafeEqual(entry.digest, digest)) found = entry.principal;
    }
    return found;
  }

  /** This table with `token` added for `principal` (the host's own token for its workers). */
  with(token: string, principal: string): TokenTable {
    return new TokenTable([...this.entries, { digest: digestOf(token), principal }], this.operators);
  }
}

function tokenProblem(token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH) return `a token is shorter than ${MIN_TOKEN_LENGTH} characters`;
  if (!/^[\x21-\x7e]+$/.test(token)) return "a token may hold only printable ASCII without spaces";
  return undefined;
}

function invalidTokens(source: string, problem: string): BridgeError {
  return new BridgeError(ErrorType.ValidationError, `invalid tokens file ${source}: ${problem}`, {
    details: { field: "authTokensFile" },
  });
}

/**
 * The first word of a line granting the operator role. Tokens have at least
 * MIN_TOKEN_LENGTH characters, so no line of a file written before roles existed starts
 * with it: such files read as they always did.
 */
const OPERATOR_KEYWORD = "operator";

/**
 * Parses a tokens file: one `<token> <principal>` per line (the principal may contain
 * spaces), and `operator <principal>` lines granting that principal, however it
 * authenticates (token, client certificate, hook), the operator role; blank lines and
 * lines starting with `#` are ignored.
 */
export function parseTokens(text: string, source: string): TokenTable {
  const pairs: [string, string][] = [];
  const operators: string[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(\S+)\s+(.+)$/.exec(line);
    if (match === null) {
      throw invalidTokens(source, `line ${index + 1} is not '<token> <principal>' or 'operator <principal>'`);
    }
    const [first, rest] = [match[1] as string, (match[2] as string).trim()];
    if (first === OPERATOR_KEYWORD) operators.push(rest);
    else pairs.push([first, rest]);
  }
  return TokenTable.of(pairs, source, operators);
}

/** Reads and parses the tokens file at `path`; throws ValidationError saying what is wrong. */
export function loadTokensFile(path: string): TokenTable {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw invalidTokens(path, (error as Error).message);
  }
  return parseTokens(text, path);
}
