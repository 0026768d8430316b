/**
 * The README's main demo: a TypeScript program hosts the shop tools, and a DSPy ReAct agent in a
 * Python worker uses them to answer a question.
 *
 *   make demo        # or: node --import tsx examples/agent/demo.ts ["your question"]
 *
 * The agent's LM is a scripted DummyLM (no network) unless TOOLBRIDGE_LM names a real one, e.g.
 * TOOLBRIDGE_LM=openai/gpt-4o-mini with OPENAI_API_KEY set. TOOLBRIDGE_PYTHON overrides the
 * interpreter (default: the repository's .venv).
 *
 * With TOOLBRIDGE_TRACING=true (what `make demo-traces` sets, with the OTEL_* variables saying
 * where spans go) the host traces, the agent's interpreter too, and search_docs shows a tool's
 * own work (a span of its own) and a call to a Python worker (one warm worker counts each
 * snippet's words with examples/workers/text_tools.py's word_count) in the run's trace
 * (docs/tracing.md).
 */
import { once } from "node:events";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { trace } from "@opentelemetry/api";
import {
  agentRunVariable,
  BridgeError,
  defineTool,
  runPythonAgent,
  SessionVariableAgentStore,
  type Tool,
  ToolBridgeHost,
} from "@toolbridge/server";
import { tools as shopTools } from "../tools/shop-tools.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const QUESTION = "I'm ordering 3 items at 14.50 EUR each with express shipping. What will I pay in total?";
const AGENT_TOOLS = ["search_docs", "read_doc", "calculate"];

const dim = (text: string) => (process.stdout.isTTY ? `\x1b[2m${text}\x1b[0m` : text);
const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);

function short(value: unknown, limit = 110): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

function callText(name: string, args: Record<string, unknown>): string {
  return `${name}(${Object.entries(args)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(", ")})`;
}

/** The same tool, announcing on the host's side each call it serves. */
function announced(tool: Tool): Tool {
  if (tool.streaming) return tool;
  return defineTool({
    name: tool.name,
    description: tool.description,
    parameters: tool.parameters,
    timeoutMs: tool.timeoutMs,
    cacheable: tool.cacheable,
    idempotent: tool.idempotent,
    handler: async (args, ctx) => {
      console.log(dim(`    host ▸ ${callText(tool.name, args)} for ${ctx.sessionId.slice(0, 16)}…`));
      return tool.handler(args, ctx);
    },
  });
}

/**
 * search_docs with its search as a span of the tool's own, and each hit's words counted by the
 * Python worker's word_count tool: the nested work a trace shows under the tool's span.
 */
function searchWithWordCounts(tool: Tool, host: ToolBridgeHost): Tool {
  const tracer = trace.getTracer("examples/agent/demo");
  return defineTool({
    name: tool.name,
    description: tool.description,
    parameters: tool.parameters,
    handler: async (args, ctx) => {
      const hits = (await tracer.startActiveSpan("search corpus", async (span) => {
        try {
          return await tool.handler(args, ctx);
        } finally {
          span.end();
        }
      })) as { snippet: string }[];
      const options = { sessionId: ctx.sessionId, signal: ctx.signal };
      const counted = [];
      for (const hit of hits) {
        const counts = (await host.workers.call("word_count", { text: hit.snippet }, options)) as {
          words: number;
        };
        counted.push({ ...hit, words: counts.words });
      }
      return counted;
    },
  });
}

async function main(): Promise<number> {
  const question = process.argv[2] ?? QUESTION;
  const lm = process.env.TOOLBRIDGE_LM;
  const venvPython = `${REPO_ROOT}.venv/bin/python`;
  const python = process.env.TOOLBRIDGE_PYTHON ?? (existsSync(venvPython) ? venvPython : "python3");
  const tracing = process.env.TOOLBRIDGE_TRACING === "true";

  const host = new ToolBridgeHost({
    host: "127.0.0.1",
    port: 0,
    logLevel: "warn",
    tracing,
    ...(tracing
      ? { workers: 1, workerModule: `${REPO_ROOT}examples/workers/text_tools.py`, workerPython: python }
      : {}),
  });
  const tools = tracing
    ? shopTools.map((tool) => (tool.name === "search_docs" ? searchWithWordCounts(tool, host) : tool))
    : shopTools;
  host.registerTool(tools.map(announced));
  const { target } = await host.start();
  const session = await host.createSession("", { example: "dspy-agent" });

  console.log(bold("toolbridge demo: a DSPy ReAct agent in Python using tools hosted by TypeScript\n"));
  console.log(`host      ${target} serving ${host.toolNames().join(", ")}`);
  console.log(
    `inspect   npx toolbridge inspect ${target}   (in another terminal: the web inspector of this host)`,
  );
  console.log(`session   ${session.id}`);
  console.log(
    `LM        ${lm ?? "scripted DummyLM (no network; set TOOLBRIDGE_LM=openai/gpt-4o-mini for a real one)"}`,
  );
  console.log(`question  ${question}\n`);
  console.log(dim(`starting ${python} -m toolbridge.agent --address ${target} --session ${session.id} ...`));

  try {
    const result = await runPythonAgent({
      python,
      address: target,
      sessionId: session.id,
      signature: "question -> answer",
      tools: AGENT_TOOLS,
      inputs: { question },
      // The scripted LM only knows the demo question; with TOOLBRIDGE_LM set the worker uses that LM.
      script: "shop",
      cwd: REPO_ROOT,
      onEvent: (event) => {
        if (event.kind === "run_started") console.log(dim(`  worker ▸ run ${event.runId} (LM ${event.lm})`));
        if (event.kind === "tool_call")
          console.log(`  worker ▸ step ${event.step + 1}: ${callText(event.toolName, event.toolArgs)}`);
        if (event.kind === "observation")
          console.log(dim(`  worker ▸ step ${event.step + 1} observed ${short(event.observation, 80)}`));
      },
      onStderr: (line) => {
        // The worker's readable progress repeats the events above; show only what else it says.
        if (!/^\[(agent|step \d+)\]/.test(line)) console.log(dim(`  worker ! ${line}`));
      },
    });

    console.log(`\nrun ${result.runId}: ${result.status}`);
    if (result.status !== "succeeded") {
      console.log(`error: ${result.error}`);
      return 1;
    }
    // The worker recorded the run in the session; the host reads the trajectory from there.
    const variables = host.variables(session.id);
    const record = await new SessionVariableAgentStore(variables).loadRun(result.runId);
    const { version } = await variables.get(agentRunVariable(record.runId));
    console.log(
      `\n${bold("trajectory")}  from session variable ${agentRunVariable(record.runId)} (version ${version})`,
    );
    record.steps.forEach((step, i) => {
      console.log(`  ${i + 1}. ${dim(step.thought)}`);
      console.log(`     ${callText(step.toolName, step.toolArgs)} → ${short(step.observation, 90)}`);
    });
    console.log(`\n${bold("answer")}  ${String(result.outputs.answer)}`);
    return 0;
  } catch (error) {
    // No run happened (no Python, an unknown tool, ...): the message says why.
    if (error instanceof BridgeError) {
      console.error(`error: ${error.message}`);
      return 2;
    }
    throw error;
  } finally {
    await keepServingWhileInspected(target);
    await host.stop();
  }
}

/** At a terminal, the host serves until Enter, so that the inspector can look at the run. */
async function keepServingWhileInspected(target: string): Promise<void> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return;
  console.log(
    `\n${dim(`the host keeps serving for the inspector (npx toolbridge inspect ${target}); press Enter to stop it`)}`,
  );
  process.stdin.resume();
  await once(process.stdin, "data");
  process.stdin.pause();
}

process.exitCode = await main();
