/**
 * `make demo-traces`: the README's agent demo (examples/agent/demo.ts) with tracing on, its
 * spans sent to Arize Phoenix, a real OTLP trace backend with a web UI, running on loopback
 * from its own virtualenv (.tools/phoenix, which the make target installs). It prints the UI's
 * address and the run's trace tree as Phoenix's REST API returns it: the Python agent's step,
 * the host's RPC, execute_tool, the tool's own work and its call to a Python worker.
 *
 *   node --import tsx examples/tracing/demo-traces.ts [--screenshot docs/images/trace-demo.png]
 *
 * Phoenix keeps its data in a temporary directory, listens on 127.0.0.1 only, and is told to
 * send no telemetry and load nothing from the network. At a terminal it keeps running until
 * Enter, so that the trace can be looked at in a browser.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PHOENIX = process.env.PHOENIX_BIN ?? `${REPO_ROOT}.tools/phoenix/bin/phoenix`;
const PROJECT = "toolbridge-demo";
const ROOT_SPAN = "invoke_agent ReAct";

/** A span as Phoenix's REST API (`/v1/projects/{project}/spans`) returns it. */
interface PhoenixSpan {
  readonly name: string;
  readonly context: { readonly trace_id: string; readonly span_id: string };
  readonly parent_id: string | null;
  readonly span_kind: string;
  readonly start_time: string;
  readonly end_time: string;
  readonly status_code: string;
  readonly attributes: Record<string, unknown>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/** Waits until `check` resolves true, polling every 250 ms for at most `limitMs`. */
async function until(what: string, limitMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} within ${limitMs / 1000} s`);
}

/** Phoenix on loopback, with its data in `directory`; resolves once it answers /healthz. */
async function startPhoenix(directory: string): Promise<{ url: string; process: ChildProcess }> {
  const [port, grpcPort] = [await freePort(), await freePort()];
  const child = spawn(PHOENIX, ["serve"], {
    env: {
      ...process.env,
      PHOENIX_WORKING_DIR: directory,
      PHOENIX_HOST: "127.0.0.1",
      PHOENIX_PORT: String(port),
      PHOENIX_GRPC_PORT: String(grpcPort),
      PHOENIX_TELEMETRY_ENABLED: "false",
      PHOENIX_ALLOW_EXTERNAL_RESOURCES: "false",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    log = (log + text).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await until("Phoenix did not answer", 180_000, async () => {
      if (child.exitCode !== null) throw new Error(`Phoenix exited (${child.exitCode}):\n${log}`);
      return (await fetch(`${url}/healthz`)).ok;
    });
  } catch (error) {
    child.kill("SIGTERM");
    throw error;
  }
  return { url, process: child };
}

/** The README's demo with tracing on, exporting to Phoenix over OTLP/HTTP; resolves with its exit code. */
async function runDemo(phoenix: string): Promise<number> {
  const venvPython = `${REPO_ROOT}.venv/bin/python`;
  const child = spawn(process.execPath, ["--import", "tsx", `${REPO_ROOT}examples/agent/demo.ts`], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TOOLBRIDGE_TRACING: "true",
      TOOLBRIDGE_PYTHON: process.env.TOOLBRIDGE_PYTHON ?? venvPython,
      OTEL_EXPORTER_OTLP_ENDPOINT: phoenix,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_RESOURCE_ATTRIBUTES: `openinference.project.name=${PROJECT}`,
      OTEL_BSP_SCHEDULE_DELAY: "200",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return code ?? 1;
}

async function projectSpans(phoenix: string): Promise<PhoenixSpan[]> {
  const response = await fetch(`${phoenix}/v1/projects/${PROJECT}/spans?limit=1000`);
  if (!response.ok) return [];
  return ((await response.json()) as { data: PhoenixSpan[] }).data;
}

/** The spans of the agent run's trace, once Phoenix has them all (the worker's too). */
async function runTrace(phoenix: string): Promise<PhoenixSpan[]> {
  let spans: PhoenixSpan[] = [];
  await until("the run's trace did not reach Phoenix", 30_000, async () => {
    const all = await projectSpans(phoenix);
    const root = all.find((span) => span.name === ROOT_SPAN);
    spans = root === undefined ? [] : all.filter((span) => span.context.trace_id === root.context.trace_id);
    return (
      spans.some((span) => span.name.startsWith("execute_tool word_count")) && spans.some((s) => s === root)
    );
  });
  return spans;
}

/** The trace as an indented tree: each span's name, kind and duration, children in start order. */
function treeLines(spans: readonly PhoenixSpan[]): string[] {
  const ids = new Set(spans.map((span) => span.context.span_id));
  const children = new Map<string, PhoenixSpan[]>();
  const roots: PhoenixSpan[] = [];
  for (const span of spans) {
    if (span.parent_id !== null && ids.has(span.parent_id)) {
      children.set(span.parent_id, [...(children.get(span.parent_id) ?? []), span]);
    } else roots.push(span);
  }
  const byStart = (a: PhoenixSpan, b: PhoenixSpan) => Date.parse(a.start_time) - Date.parse(b.start_time);
  const lines: string[] = [];
  const walk = (span: PhoenixSpan, prefix: string, last: boolean, depth: number) => {
    const ms = Date.parse(span.end_time) - Date.parse(span.start_time);
    const branch = depth === 0 ? "" : last ? "└─ " : "├─ ";
    const status = span.status_code === "ERROR" ? "  ERROR" : "";
    lines.push(`${prefix}${branch}${span.name}  [${span.span_kind.toLowerCase()}, ${ms} ms]${status}`);
    const kids = (children.get(span.context.span_id) ?? []).sort(byStart);
    const next = depth === 0 ? "" : `${prefix}${last ? "   " : "│  "}`;
    for (const [i, kid] of kids.entries()) walk(kid, next, i === kids.length - 1, depth + 1);
  };
  for (const root of roots.sort(byStart)) walk(root, "", true, 0);
  return lines;
}

/** Phoenix's page of one trace. */
async function traceUrl(phoenix: string, traceId: string): Promise<string> {
  const response = await fetch(`${phoenix}/v1/projects`);
  const projects = ((await response.json()) as { data: { name: string; id: string }[] }).data;
  const project = projects.find((entry) => entry.name === PROJECT);
  return `${phoenix}/projects/${project?.id ?? ""}/traces/${traceId}`;
}

/** A picture of Phoenix's page of the trace, in headless Chromium (playwright-core, Debian's chromium). */
async function screenshot(url: string, path: string): Promise<void> {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: process.env.TOOLBRIDGE_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1250 }, deviceScaleFactor: 1 });
    await page.goto(url, { waitUntil: "domcontentloaded" });
    // The page draws a skeleton first; the span tree is there once the worker's span is.
    await page.getByText("search corpus").first().waitFor({ timeout: 60_000 });
    // The host's execute_tool span (the second of that name: the first is the agent's step), with its attributes.
    await page.getByText("execute_tool search_docs", { exact: true }).nth(1).click();
    await page.getByText("gen_ai.tool.call.id").first().waitFor({ timeout: 30_000 });
    await page.waitForLoadState("networkidle").catch(() => {});
    await page.screenshot({ path });
  } finally {
    await browser.close();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { screenshot: { type: "string" } } });
  if (!existsSync(PHOENIX)) {
    console.error(`error: ${PHOENIX} is missing: run 'make demo-traces', which installs Phoenix there`);
    return 2;
  }
  const directory = mkdtempSync(join(tmpdir(), "toolbridge-phoenix-"));
  console.log("==> starting Arize Phoenix on loopback (its data in a temporary directory)");
  const phoenix = await startPhoenix(directory);
  try {
    console.log(`==> Phoenix at ${phoenix.url}; running the agent demo with TOOLBRIDGE_TRACING=true\n`);
    const code = await runDemo(phoenix.url);
    if (code !== 0) return code;
    const spans = await runTrace(phoenix.url);
    const traceId = spans[0]?.context.trace_id ?? "";
    console.log(`\n==> the run's trace ${traceId}, as Phoenix returns it (${spans.length} spans):\n`);
    for (const line of treeLines(spans)) console.log(`  ${line}`);
    const url = await traceUrl(phoenix.url, traceId);
    console.log(`\n==> the trace in Phoenix's UI: ${url}`);
    if (values.screenshot !== undefined) {
      await screenshot(url, values.screenshot);
      console.log(`==> screenshot: ${values.screenshot}`);
    }
    if (process.stdin.isTTY && process.stdout.isTTY) {
      console.log("==> Phoenix keeps running for the browser; press Enter to stop it");
      process.stdin.resume();
      await once(process.stdin, "data");
      process.stdin.pause();
    }
    return 0;
  } finally {
    phoenix.process.kill("SIGTERM");
    await once(phoenix.process, "exit");
    rmSync(directory, { recursive: true, force: true });
  }
}

process.exitCode = await main();
