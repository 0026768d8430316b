#!/usr/bin/env node
// The `toolbridge` command (package.json "bin"). A file kept in the repository rather than the
// compiled dist/cli.js itself: npm links a bin into node_modules/.bin when it installs, which in
// a checkout is before anything is compiled, and it skips a bin whose file does not exist yet.
import { existsSync } from "node:fs";

const cli = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    "toolbridge: the host is not compiled yet: run `make build` in the repository first\n",
  );
  process.exit(1);
}
await import(cli.href);
