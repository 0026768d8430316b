/**
 * String `pattern` constraints, matched in time linear in the string's length by RE2's
 * semantics (re2js, a pure-JavaScript port of RE2), so that no pattern a client declares
 * can make a write block the host: `^(a+)+$` against "aaaa…!" costs what any other
 * pattern does. Constructs that need backtracking (backreferences, lookaround) have no
 * linear-time match and are refused when the pattern is declared.
 */
import { RE2JS } from "re2js";

export const MAX_PATTERN_LENGTH = 1000;

/** What a constraint pattern needs: a search anywhere in the string. */
export interface Pattern {
  /** True when the pattern matches somewhere in `text` (anchor it with ^...$ for all of it). */
  test(text: string): boolean;
}

// Constructs of backtracking engines (JavaScript, PCRE, Python's re) that RE2 does not have.
const BACKTRACKING = [
  { construct: /\\[1-9]|\\k</, name: "backreferences (\\1, \\k<name>)" },
  { construct: /\(\?<?[=!]/, name: "lookahead and lookbehind ((?=...), (?!...), (?<=...), (?<!...))" },
  { construct: /\(\?>/, name: "atomic groups ((?>...))" },
  { construct: /[*+?}][+]/, name: "possessive quantifiers (a*+)" },
];

/** Why `pattern` cannot be a constraint, or undefined when it can. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_PATTERN_LENGTH) return `pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    compiled(pattern);
    return undefined;
  } catch (error) {
    const found = BACKTRACKING.filter(({ construct }) => construct.test(pattern)).map(({ name }) => name);
    const reason = error instanceof Error ? error.message : String(error);
    if (found.length > 0) {
      return (
        `pattern uses ${found.join(" and ")}, which need backtracking; patterns are matched in linear ` +
        `time with RE2 syntax, which has none (${reason}). Rewrite the pattern without them`
      );
    }
    return `pattern is not a valid RE2 regular expression: ${reason}`;
  }
}

const cache = new Map<string, Pattern>();

/** The compiled pattern (compiled once; the cache is bounded because patterns come from clients). */
export function compiled(pattern: string): Pattern {
  let re = cache.get(pattern);
  if (re === undefined) {
    re = RE2JS.compile(pattern);
    if (cache.size >= 256) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}
