/**
 * Example tools a TypeScript application might expose to Python agents: a safe
 * calculator, search over a small bundled corpus of shop policies, and a streaming
 * indexer that reports progress.
 *
 *   npx toolbridge serve --tools examples/tools/shop-tools.ts --host 127.0.0.1
 */
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

// ---------------------------------------------------------------------------
// Calculator: a small recursive-descent parser, so no user text ever reaches eval().

const FUNCTIONS: Record<string, (x: number) => number> = {
  sqrt: Math.sqrt,
  abs: Math.abs,
  round: Math.round,
  floor: Math.floor,
  ceil: Math.ceil,
  ln: Math.log,
  log10: Math.log10,
};
const CONSTANTS: Record<string, number> = { pi: Math.PI, e: Math.E };

export function calculate(expression: string): number {
  const tokens = expression.match(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[A-Za-z_]\w*|\*\*|[-+*/%^(),]|\S/g) ?? [];
  let pos = 0;
  const peek = () => tokens[pos];
  const fail = (what: string, at = pos): never => {
    throw new Error(`${what} at token ${at + 1} of '${expression}'`);
  };
  const expect = (token: string) => {
    if (tokens[pos] !== token) fail(`expected '${token}'`);
    pos++;
  };
  const sum = (): number => {
    let value = product();
    while (peek() === "+" || peek() === "-")
      value = tokens[pos++] === "+" ? value + product() : value - product();
    return value;
  };
  const product = (): number => {
    let value = power();
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const op = tokens[pos++];
      const right = power();
      if ((op === "/" || op === "%") && right === 0) fail("division by zero");
      value = op === "*" ? value * right : op === "/" ? value / right : value % right;
    }
    return value;
  };
  const power = (): number => {
    const base = unary();
    if (peek() === "^" || peek() === "**") {
      pos++;
      return base ** power();
    }
    return base;
  };
  const unary = (): number => {
    if (peek() === "-") {
      pos++;
      return -unary();
    }
    if (peek() === "+") {
      pos++;
      return unary();
    }
    return atom();
  };
  const atom = (): number => {
    const token = peek();
    if (token === undefined) return fail("unexpected end");
    const at = pos++;
    if (/^\d/.test(token)) return Number(token);
    if (token === "(") {
      const value = sum();
      expect(")");
      return value;
    }
    const fn = FUNCTIONS[token.toLowerCase()];
    if (fn !== undefined) {
      expect("(");
      const value = fn(sum());
      expect(")");
      return value;
    }
    const constant = CONSTANTS[token.toLowerCase()];
    if (constant !== undefined) return constant;
    return fail(`unknown symbol '${token}'`, at);
  };
  const value = sum();
  if (pos < tokens.length) fail(`unexpected '${tokens[pos]}'`);
  return value;
}

// ---------------------------------------------------------------------------
// Corpus search: TF-IDF over the markdown files in examples/data/corpus.

interface Doc {
  id: string;
  title: string;
  text: string;
  terms: Map<string, number>;
}

const CORPUS_DIR = new URL("../data/corpus/", import.meta.url);
const STOP_WORDS = new Set(
  "a an and are as at be by can for from in is it of on or the to we with".split(" "),
);

function tokenize(text: string): string[] {
  return (text.toLowerCase().match(/[a-z0-9]+/g) ?? []).filter((t) => !STOP_WORDS.has(t));
}

function loadCorpus(): Doc[] {
  return readdirSync(CORPUS_DIR)
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => {
      const raw = readFileSync(new URL(name, CORPUS_DIR), "utf8");
      const title = /^#\s+(.+)$/m.exec(raw)?.[1] ?? name;
      const text = raw.replace(/^#.*$/m, "").replace(/\s+/g, " ").trim();
      const terms = new Map<string, number>();
      for (const term of tokenize(text)) terms.set(term, (terms.get(term) ?? 0) + 1);
      return { id: name.replace(/\.md$/, ""), title, text, terms };
    });
}

const corpus = loadCorpus();

function search(query: string, limit: number) {
  const queryTerms = [...new Set(tokenize(query))];
  const scored = corpus.map((doc) => {
    let score = 0;
    for (const term of queryTerms) {
      const tf = doc.terms.get(term) ?? 0;
      if (tf === 0) continue;
      const df = corpus.filter((d) => d.terms.has(term)).length;
      score += (1 + Math.log(tf)) * Math.log(1 + corpus.length / df);
    }
    const sentences = doc.text.split(/(?<=\.)\s+/);
    const snippet =
      sentences
        .map((s) => ({ s, hits: queryTerms.filter((t) => tokenize(s).includes(t)).length }))
        .sort((a, b) => b.hits - a.hits)[0]?.s ?? "";
    return { id: doc.id, title: doc.title, score: Math.round(score * 1000) / 1000, snippet };
  });
  return scored
    .filter((hit) => hit.score > 0)
    .sort((a, b) => b.score - a.score)
    .slice(0, limit);
}

// ---------------------------------------------------------------------------

export const tools = [
  defineTool({
    name: "calculate",
    description:
      "Evaluates an arithmetic expression with + - * / % ^, parentheses, sqrt, abs, round, floor, ceil, ln, log10, pi and e.",
    parameters: z.object({
      expression: z.string().min(1).max(500).describe("The expression, e.g. '3 * 15 + 12'"),
    }),
    cacheable: true,
    idempotent: true,
    handler: ({ expression }) => calculate(expression),
  }),
  defineTool({
    name: "search_docs",
    description: "Searches the shop's policy documents and returns the best matches with a snippet each.",
    parameters: z.object({
      query: z.string().min(1).describe("What to look for, in a few words"),
      limit: z.int().min(1).max(10).default(3).describe("Most results to return"),
    }),
    cacheable: true,
    idempotent: true,
    handler: ({ query, limit }) => search(query, limit),
  }),
  defineTool({
    name: "read_doc",
    description: "Returns the full text of one policy document by its id (as search_docs reports it).",
    parameters: z.object({ doc_id: z.string().describe("Document id, e.g. 'shipping'") }),
    cacheable: true,
    idempotent: true,
    handler: ({ doc_id }) => {
      const doc = corpus.find((d) => d.id === doc_id);
      if (doc === undefined) {
        throw new Error(`no document '${doc_id}'; known ids: ${corpus.map((d) => d.id).join(", ")}`);
      }
      return { id: doc.id, title: doc.title, text: doc.text };
    },
  }),
  defineTool({
    name: "index_corpus",
    description: "Re-indexes the policy documents, streaming progress as it goes.",
    parameters: z.object({ delay_ms: z.int().min(0).max(5000).default(150).describe("Pause per document") }),
    streaming: true,
    handler: async function* ({ delay_ms }, ctx) {
      const docs = loadCorpus();
      let terms = 0;
      for (const [n, doc] of docs.entries()) {
        await sleep(delay_ms, undefined, { signal: ctx.signal });
        terms += doc.terms.size;
        yield {
          stage: "indexing",
          doc: doc.id,
          done: n + 1,
          total: docs.length,
          percent: Math.round(((n + 1) / docs.length) * 100),
        };
      }
      yield { stage: "done", documents: docs.length, distinct_terms: terms };
    },
  }),
];

export default function register(host: ToolBridgeHost): void {
  host.registerTool(tools);
}
