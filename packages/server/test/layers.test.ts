// The import graph of the TypeScript packages: no cycles, and every file imports only from
// its own layer or below. Every import counts: static ones, `import type`, `export ... from`
// and `import()` with a literal. docs/architecture.md describes the layers.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGES = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Which packages each package may import: core is the bottom, client and server are siblings on it. */
const PACKAGE_DEPENDENCIES: Record<string, readonly string[]> = {
  core: [],
  client: ["core"],
  server: ["core"],
};

/**
 * The layers inside the host, from the bottom; a file's layer is that of the longest prefix
 * of its path (under packages/server/src) named here.
 */
const SERVER_LAYERS: Record<string, number> = {
  // 1. Leaves: configuration, the caller's identity, gRPC status helpers, generated services.
  "config.ts": 1,
  "auth/principal.ts": 1,
  "grpc/": 1,
  "gen/": 1,
  "private-dir.ts": 1,
  "tools-module-hooks.ts": 1,
  // The schema of mounted MCP servers in the configuration.
  "mcp/mount/config.ts": 1,
  // Tracing: what the host's parts ask of it (types), and the spans and SDK imported only
  // when it is on.
  "tracing/": 1,
  // 2. State: the stores and sessions, variables, tool definitions and their registry, metrics.
  "sessions/": 2,
  "variables/": 2,
  "tools/define.ts": 2,
  // A tool's declared limits are validated when it is defined.
  "tools/limits.ts": 2,
  "tools/registry.ts": 2,
  "metrics/metrics.ts": 2,
  // The inspector's call log: recent calls and per-tool activity, fed by the metrics.
  "inspector/call-log.ts": 2,
  // 3. The call engine: prepare, admit, run, finish; batches and replay.
  "tools/": 3,
  // 4. The Python worker pool, whose tools run through the engine like any other.
  "workers/": 4,
  // 5. Agents, which may run on the pool's workers.
  "agents/": 5,
  // 6. The wire: the gRPC services, authentication, the metrics endpoint, calls to other nodes.
  "rpc/": 6,
  "auth/": 6,
  "metrics/": 6,
  "peers/": 6,
  "mcp/": 6,
  // The inspector's gateway (Connect over HTTP to the host's own gRPC service) and the
  // operations RPCs it and other operators' clients call.
  "inspector/": 6,
  // 7. The composition root and the public facade.
  "host.ts": 7,
  "host/": 7,
  "cli.ts": 7,
  // `toolbridge inspect`: the CLI's command serving the inspector of a running host.
  "inspector/inspect-command.ts": 7,
  "index.ts": 7,
};

interface Import {
  /** The imported file, as "package/src/path.ts"; undefined for a module of another library. */
  readonly target: string | undefined;
  readonly specifier: string;
  readonly line: number;
}

/** Every .ts file under packages/{core,client,server}/src, as "package/src/path.ts". */
function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
        files.push(relative(PACKAGES, path));
    }
  };
  for (const name of Object.keys(PACKAGE_DEPENDENCIES)) walk(join(PACKAGES, name, "src"));
  return files.sort();
}

type Token = { readonly kind: "word" | "string" | "punct"; readonly text: string; readonly line: number };

/** Words after which a `/` starts a regular expression; after other words, strings and `)]}` it divides. */
const KEYWORDS_BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "case",
  "do",
  "else",
  "in",
  "of",
  "void",
  "yield",
  "await",
]);

/**
 * The code's tokens that matter to imports: words, string literals and punctuation, with
 * comments, template literals and regular expressions skipped (their text could look like an import).
 */
function tokens(source: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  const templateDepth: number[] = [];
  let braces = 0;
  const skipTemplate = () => {
    // From inside a template literal to its end, or to a `${` whose expression is then tokenized.
    while (i < source.length) {
      const c = source[i];
      if (c === "\n") line++;
      if (c === "\\") i += 2;
      else if (c === "`") {
        i++;
        return;
      } else if (c === "$" && source[i + 1] === "{") {
        i += 2;
        templateDepth.push(braces);
        braces++;
        return;
      } else i++;
    }
  };
  while (i < source.length) {
    const c = source[i] as string;
    if (c === "\n") {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === "/" && source[i + 1] === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? source.length : end + 2;
      for (let k = i; k < stop; k++) if (source[k] === "\n") line++;
      i = stop;
    } else if (c === '"' || c === "'") {
      let k = i + 1;
      let text = "";
      while (k < source.length && source[k] !== c && source[k] !== "\n") {
        if (source[k] === "\\") k++;
        text += source[k];
        k++;
      }
      out.push({ kind: "string", text, line });
      i = k + 1;
    } else if (c === "`") {
      i++;
      skipTemplate();
      out.push({ kind: "string", text: "`", line });
    } else if (c === "/") {
      const previous = out.at(-1);
      const divides =
        previous !== undefined &&
        (previous.kind === "punct"
          ? /[)\]}]/.test(previous.text)
          : previous.text !== "/regex/" && !KEYWORDS_BEFORE_REGEX.has(previous.text));
      if (divides) {
        out.push({ kind: "punct", text: c, line });
        i++;
      } else {
        // A regular expression literal: to its closing slash, minding classes and escapes.
        let k = i + 1;
        let inClass = false;
        while (k < source.length && source[k] !== "\n") {
          const r = source[k];
          if (r === "\\") k++;
          else if (r === "[") inClass = true;
          else if (r === "]") inClass = false;
          else if (r === "/" && !inClass) break;
          k++;
        }
        i = k + 1;
        while (i < source.length && /[a-z]/.test(source[i] as string)) i++;
        out.push({ kind: "string", text: "/regex/", line });
      }
    } else if (/[A-Za-z0-9_$]/.test(c)) {
      let k = i;
      while (k < source.length && /[A-Za-z0-9_$]/.test(source[k] as string)) k++;
      out.push({ kind: "word", text: source.slice(i, k), line });
      i = k;
    } else {
      if (c === "{") braces++;
      if (c === "}") {
        braces--;
        if (templateDepth.at(-1) === braces) {
          // The end of a template's `${...}`: back inside the template literal.
          templateDepth.pop();
          i++;
          skipTemplate();
          continue;
        }
      }
      out.push({ kind: "punct", text: c, line });
      i++;
    }
  }
  return out;
}

/** The module specifiers a file imports, with their lines. */
function specifiers(source: string): { specifier: string; line: number }[] {
  const found: { specifier: string; line: number }[] = [];
  const list = tokens(source);
  for (let n = 0; n < list.length; n++) {
    const token = list[n] as Token;
    if (token.kind !== "word" || (token.text !== "import" && token.text !== "export")) continue;
    const previous = list[n - 1];
    if (previous !== undefined && previous.text === ".") continue; // a property named so
    const next = list[n + 1];
    if (token.text === "import" && next?.text === "(") {
      const argument = list[n + 2];
      if (argument?.kind === "string" && argument.text !== "`" && list[n + 3]?.text === ")")
        found.push({ specifier: argument.text, line: token.line });
      continue;
    }
    if (token.text === "import" && next?.kind === "string") {
      found.push({ specifier: next.text, line: token.line });
      continue;
    }
    // `import ... from "x"` / `export ... from "x"`: the clause holds words, braces, commas and `*`.
    if (token.text === "export") {
      const first = next?.text === "type" ? list[n + 2] : next;
      if (first?.text !== "{" && first?.text !== "*") continue;
    }
    let k = n + 1;
    while (k < list.length) {
      const t = list[k] as Token;
      if (t.kind === "word" && t.text === "from") break;
      if (t.kind !== "word" && !["{", "}", ",", "*"].includes(t.text)) break;
      k++;
    }
    const literal = list[k + 1];
    if (list[k]?.text === "from" && literal?.kind === "string")
      found.push({ specifier: literal.text, line: token.line });
  }
  return found;
}

function resolveSpecifier(file: string, specifier: string): string | undefined {
  if (specifier.startsWith(".")) {
    const base = join(dirname(file), specifier).replace(/\.js$/, "");
    for (const candidate of [`${base}.ts`, join(base, "index.ts")]) {
      if (existsSync(join(PACKAGES, candidate))) return candidate;
    }
    throw new Error(`${file} imports ${specifier}, which is no file of the package`);
  }
  const match = /^@toolbridge\/([a-z]+)$/.exec(specifier);
  if (match !== null) return `${match[1]}/src/index.ts`;
  return undefined;
}

function importsOf(file: string): Import[] {
  return specifiers(readFileSync(join(PACKAGES, file), "utf8")).map(({ specifier, line }) => ({
    target: resolveSpecifier(file, specifier),
    specifier,
    line,
  }));
}

const packageOf = (file: string): string => file.slice(0, file.indexOf("/"));

/** A server file's layer (the longest prefix in SERVER_LAYERS); 0 for the other packages' files. */
function layerOf(file: string): number | undefined {
  if (packageOf(file) !== "server") return 0;
  const path = file.slice("server/src/".length);
  let best: string | undefined;
  for (const prefix of Object.keys(SERVER_LAYERS)) {
    if (path.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
  }
  return best === undefined ? undefined : SERVER_LAYERS[best];
}

const FILES = sourceFiles();
const GRAPH = new Map(FILES.map((file) => [file, importsOf(file)]));

/**
 * The import circles: each group of files that reach one another through imports (a strongly
 * connected component), as its shortest loop through its first file and every file in it.
 */
function findCycles(edges: ReadonlyMap<string, readonly string[]>): { loop: string[]; files: string[] }[] {
  // Strongly connected components (Tarjan), then one shortest loop per component.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next))
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number));
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      const selfLoop = (edges.get(node) ?? []).includes(node);
      if (component.length > 1 || selfLoop) components.push(component.sort());
    }
  };
  for (const node of [...edges.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((files) => ({
    loop: shortestLoop(files[0] as string, new Set(files), edges),
    files,
  }));
}

function shortestLoop(
  start: string,
  within: Set<string>,
  edges: ReadonlyMap<string, readonly string[]>,
): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift() as string;
    for (const next of edges.get(node) ?? []) {
      if (!within.has(next)) continue;
      if (next === start) {
        const path = [start];
        for (let at = node; at !== start; at = previous.get(at) as string) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

function edgesOf(graph: ReadonlyMap<string, readonly Import[]>): Map<string, string[]> {
  return new Map(
    [...graph].map(([file, imports]) => [
      file,
      [
        ...new Set(
          imports.flatMap(({ target }) => (target === undefined || target === file ? [] : [target])),
        ),
      ],
    ]),
  );
}

describe("the import graph", () => {
  it("sees every kind of import", () => {
    const source = [
      'import type { A } from "./a.js";',
      'import { b, type C } from "./b.js";',
      "import {\n  d,\n} from './d.js';",
      'export { e } from "./e.js";',
      'export type * from "./f.js";',
      'import "./g.js";',
      'const h = await import("./h.js");',
      '// import { x } from "./comment.js";',
      // A template literal with a placeholder (split so that this file holds none itself).
      'const s = `import { y } from "./template.js" $' + '{"./in-template.js"}`;',
      'const r = /from "\\.\\/regex.js"/;',
      "const m = import.meta.url;",
      'const q = x / 2; import { z } from "./after-division.js";',
    ].join("\n");
    assert.deepEqual(
      specifiers(source).map(({ specifier, line }) => `${line} ${specifier}`),
      [
        "1 ./a.js",
        "2 ./b.js",
        "3 ./d.js",
        "6 ./e.js",
        "7 ./f.js",
        "8 ./g.js",
        "9 ./h.js",
        "14 ./after-division.js",
      ],
    );
    // And on the real sources: a type-only import, a package import.
    const call = GRAPH.get("server/src/tools/call.ts") ?? [];
    assert.ok(
      call.some(({ target }) => target === "core/src/index.ts"),
      "tools/call.ts imports @toolbridge/core",
    );
    assert.ok(FILES.length > 50, `only ${FILES.length} source files found under ${PACKAGES}`);
  });

  it("finds a cycle", () => {
    const edges = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
      ["d", ["a"]],
    ]);
    assert.deepEqual(findCycles(edges), [{ loop: ["a", "b", "c", "a"], files: ["a", "b", "c"] }]);
    assert.deepEqual(
      findCycles(
        new Map([
          ["a", ["b"]],
          ["b", []],
        ]),
      ),
      [],
    );
  });

  it("has no cycle", () => {
    const cycles = findCycles(edgesOf(GRAPH));
    assert.deepEqual(
      cycles.map(
        ({ loop, files }) => `${loop.join(" -> ")} (a circle of ${files.length}: ${files.join(", ")})`,
      ),
      [],
    );
  });

  it("names the layer of every file of the host", () => {
    assert.deepEqual(
      FILES.filter((file) => layerOf(file) === undefined),
      [],
      "add these files to SERVER_LAYERS (and docs/architecture.md)",
    );
  });

  it("has packages import only the packages below them", () => {
    const wrong: string[] = [];
    for (const [file, imports] of GRAPH) {
      for (const { target, line, specifier } of imports) {
        if (target === undefined || packageOf(target) === packageOf(file)) continue;
        if (!PACKAGE_DEPENDENCIES[packageOf(file)]?.includes(packageOf(target)))
          wrong.push(`${file}:${line} ${specifier}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("has every file of the host import only from its layer or below", () => {
    const upward: string[] = [];
    for (const [file, imports] of GRAPH) {
      const layer = layerOf(file) ?? 0;
      for (const { target, line } of imports) {
        if (target === undefined || packageOf(target) !== packageOf(file)) continue;
        const above = layerOf(target) ?? 0;
        if (above > layer) upward.push(`${file}:${line} (layer ${layer}) imports ${target} (layer ${above})`);
      }
    }
    assert.deepEqual(upward, []);
  });
});
