/**
 * Shared state between the TypeScript application and a Python worker, through session
 * variables: the application declares a constrained `discount_rate`, the worker reads it,
 * prices an order with a host tool and writes `quote`; the application sees the quote
 * arrive on its watch and approves it by writing `approved`, which the worker is watching.
 *
 *   make demo-variables    # or: node --import tsx examples/variables/shared-state.ts
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ToolBridgeHost } from "@toolbridge/server";
import { tools as shopTools } from "../tools/shop-tools.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

function say(text: string): void {
  console.log(`  typescript ▸ ${text}`);
}

async function main(): Promise<number> {
  const venvPython = `${REPO_ROOT}.venv/bin/python`;
  const python = process.env.TOOLBRIDGE_PYTHON ?? (existsSync(venvPython) ? venvPython : "python3");
  const host = new ToolBridgeHost({ host: "127.0.0.1", port: 0, logLevel: "warn" });
  host.registerTool(shopTools);
  const { target } = await host.start();
  try {
    const session = await host.createSession("", { example: "shared-state" });
    console.log(`host ${target}, session ${session.id}\n`);
    const variables = host.variables(session.id);

    await variables.declare("discount_rate", "float", 0.1, { constraints: { min: 0, max: 0.5 } });
    say("declared discount_rate: float in [0, 0.5] = 0.1");
    const quotes = variables.watch(["quote"]);
    await quotes.ready();

    const worker = spawn(
      python,
      ["examples/variables/worker.py", "--address", target, "--session", session.id],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    createInterface({ input: worker.stdout }).on("line", (line) => console.log(line));
    const exited = new Promise<number>((resolve) => worker.on("close", (code) => resolve(code ?? 1)));
    // A worker that fails before writing its quote must not leave this loop waiting forever.
    void exited.then(() => quotes.close());

    for await (const update of quotes) {
      if (update.kind !== "set") break;
      const { value, version, updatedBy, tags } = update.variable;
      say(`saw quote v${version} from ${updatedBy} (tags ${JSON.stringify(tags)}): ${JSON.stringify(value)}`);
      await variables.set("approved", true);
      say("wrote approved = true");
      break;
    }
    quotes.close();

    const code = await exited;
    if (code !== 0) console.error(`the worker failed (exit code ${code})`);
    const rate = await variables.get("discount_rate");
    say(`discount_rate is still ${String(rate.value)} (version ${rate.version})`);
    const names = (await variables.list()).map((v) => `${v.name}@${v.version}`);
    console.log(`\nsession variables: ${names.join(", ")}`);
    return code;
  } finally {
    await host.stop();
  }
}

process.exitCode = await main();
