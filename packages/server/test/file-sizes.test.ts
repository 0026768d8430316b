// Every TypeScript file of the project, sources and tests, stays under 500 lines, generated
// code aside: a file that grows past that does several jobs and is split by concern.
// python/tests/test_package_layers.py holds the same rule for the Python files, and Biome
// (biome.jsonc) the one for functions.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const MAX_LINES = 500;

/** The folders that hold the project's TypeScript. */
const ROOTS = ["packages", "bench", "examples", "testdata"];
/** Folders that hold no file of the project's own: installed packages, build output, generated code. */
const SKIPPED = new Set(["node_modules", "dist", "gen", ".venv", "results"]);

function typescriptFiles(): string[] {
  const files: string[] = [];
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED.has(entry.name)) walk(path);
      } else if (/\.(ts|tsx|mts)$/.test(entry.name)) files.push(relative(ROOT, path));
    }
  };
  for (const name of ROOTS) walk(join(ROOT, name));
  return files.sort();
}

/** Lines as an editor numbers them: a final newline ends the last line, it starts none. */
const lineCount = (text: string) => text.split("\n").length - (text.endsWith("\n") ? 1 : 0);

describe("file sizes", () => {
  const files = typescriptFiles();

  it("counts lines as an editor does, and finds the sources and the tests", () => {
    assert.equal(lineCount("a\nb\n"), 2);
    assert.equal(lineCount("a\nb"), 2);
    for (const file of ["packages/server/src/host.ts", "packages/server/test/file-sizes.test.ts"])
      assert.ok(files.includes(file), `${file} among ${files.length} files`);
    assert.ok(!files.some((file) => file.includes("/gen/")), "generated code is left out");
  });

  it(`keeps every TypeScript file, sources and tests, at ${MAX_LINES} lines or fewer`, () => {
    const large = files
      .map((file) => ({ file, lines: lineCount(readFileSync(join(ROOT, file), "utf8")) }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ file, lines }) => `${file}: ${lines} lines`);
    assert.deepEqual(large, [], "split these files by concern");
  });
});
