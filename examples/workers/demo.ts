/**
 * `make demo-workers`: a TypeScript program that starts a pool of warm Python workers, calls
 * a Python tool, streams another, and runs a DSPy ReAct agent on a warm worker, printing how
 * long each took. The agent's LM is a scripted DummyLM (no network); its tools are the Python
 * functions of text_tools.py, called through the host.
 */
import { fileURLToPath } from "node:url";
import { SessionVariableAgentStore, ToolBridgeHost } from "@toolbridge/server";
import { pino } from "pino";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const TEXT =
  "Warm workers import DSPy once. Agents then start in milliseconds. Spawned interpreters take seconds.";
const ms = (since: number) => `${(performance.now() - since).toFixed(1)} ms`;

const host = new ToolBridgeHost({
  host: "127.0.0.1",
  port: 0,
  logger: pino({ level: "warn" }),
  workers: 2,
  workerModule: "text_tools",
  workerPool: {
    python: process.env.TOOLBRIDGE_PYTHON,
    cwd: HERE,
    env: { ...process.env, TOOLBRIDGE_LM: "" },
  },
});

console.log("toolbridge demo: warm Python workers owned by a TypeScript host\n");
let started = performance.now();
const address = await host.start();
const pool = host.workers.state();
console.log(`host      ${address.target}`);
console.log(
  `workers   ${pool.workers.length} ready in ${ms(started)} (pids ${pool.workers.map((w) => w.pid).join(", ")})`,
);
console.log(
  `tools     ${host.workers.toolSpecs.map((t) => t.name).join(", ")} (Python), registered for every session\n`,
);

started = performance.now();
const summary = await host.workers.call("summarize", { text: TEXT, max_words: 5 });
console.log(`summarize  → ${JSON.stringify(summary)}  (${ms(started)}, first call)`);
started = performance.now();
const counts = await host.workers.call("word_count", { text: TEXT });
console.log(`word_count → ${JSON.stringify(counts)}  (${ms(started)})`);
for await (const sentence of host.workers.streamCall("sentences", { text: TEXT })) {
  console.log(`sentences  ▸ ${sentence}`);
}

// DSPy is imported in each worker right after it is ready; an agent run finds it there.
while (!host.workers.state().workers.every((w) => w.agentsReady)) await new Promise((r) => setTimeout(r, 20));
const session = await host.createSession();
console.log(`\nagent on a warm worker (session ${session.id})`);
started = performance.now();
let firstStep = "";
const result = await host.workers.runAgent({
  sessionId: session.id,
  tools: ["word_count", "summarize"],
  inputs: { question: `How many words has this text, and what is it about? ${TEXT}` },
  script: `${HERE}agent_turns.json`,
  onEvent: (event) => {
    if (event.kind === "tool_call") {
      if (firstStep === "") firstStep = ms(started);
      console.log(
        `  agent ▸ step ${event.step + 1}: ${event.toolName}(${Object.keys(event.toolArgs).join(", ")})`,
      );
    }
  },
});
console.log(`first tool call ${firstStep} after the TypeScript call; run ${result.status} in ${ms(started)}`);
console.log(`answer    ${result.outputs.answer}`);
const run = await new SessionVariableAgentStore(host.variables(session.id)).loadRun(result.runId);
console.log(
  `recorded  run_${run.runId} by worker ${run.worker}: ${run.steps.map((s) => s.toolName).join(" → ")}`,
);

await host.stop();
console.log(`\nstopped: ${host.workers.state().workers.length} workers left`);
