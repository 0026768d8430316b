/**
 * The inspector's benchmark (`make bench-inspector`, part of `make bench`), in headless
 * Chromium against the real host CLI serving the inspector on loopback:
 *
 * 1. Opening each page over a host with 1,000 sessions and one session of 5,000 variables,
 *    until its content is on screen (the tools listed, the first page of sessions, the
 *    session's 5,000 variables counted and drawn, its agent runs listed, the health and
 *    calls): in a fresh browser context (nothing cached: the page's code is fetched and
 *    compiled), and from another page of an open inspector. Target: 1 s.
 * 2. A variable written by a gRPC client reaching that session's page (5,000 variables
 *    shown): from just before the write is sent to the moment the page's DOM shows the new
 *    value (a MutationObserver in the page stamps it). Target: median 200 ms.
 *
 *   node --import tsx bench/inspector.ts [--sessions 1000] [--variables 5000] [--repeats 5] [--writes 50]
 *
 * Results: bench/results/inspector.json. The page's bundle sizes are reported too.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import { encodeValue, pb } from "@toolbridge/core";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../packages/server/test/support/browser.js";
import { startHost, TEST_TOOLS } from "../packages/server/test/support/host-process.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const UI = `${REPO}packages/server/dist/inspector-ui/assets`;
const BIG_SESSION = "bench-variables";

const { values } = parseArgs({
  options: {
    sessions: { type: "string", default: "1000" },
    variables: { type: "string", default: "5000" },
    repeats: { type: "string", default: "5" },
    writes: { type: "string", default: "50" },
  },
});
const SESSIONS = Number(values.sessions);
const VARIABLES = Number(values.variables);
const REPEATS = Number(values.repeats);
const WRITES = Number(values.writes);

function unary<Res>(call: (callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown) {
  return new Promise<Res>((resolve, reject) =>
    call((error, response) => (error ? reject(error) : resolve(response))),
  );
}

/** Runs `task` for 0..count-1, `parallel` at a time. */
async function inBatches(
  count: number,
  parallel: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  for (let start = 0; start < count; start += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, count - start) }, (_, k) => task(start + k)));
  }
}

async function seed(stub: pb.ToolBridgeClient): Promise<void> {
  const session = (sessionId: string) =>
    unary<pb.InitializeSessionResponse>((cb) =>
      stub.initializeSession({ sessionId, metadata: { bench: "inspector" } }, cb),
    );
  await inBatches(SESSIONS - 1, 50, (i) => session(`bench-${String(i).padStart(4, "0")}`));
  await session(BIG_SESSION);
  const value = (i: number) =>
    encodeValue(
      i % 3 === 0 ? i : i % 3 === 1 ? `value ${i}` : { index: i, label: `item ${i}`, score: i / 7 },
    );
  await inBatches(VARIABLES, 100, (i) =>
    unary<pb.SetVariableResponse>((cb) =>
      stub.setSessionVariable(
        {
          sessionId: BIG_SESSION,
          variableName: `v${String(i).padStart(5, "0")}`,
          value: value(i),
          metadata: undefined,
          createIfMissing: true,
        },
        cb,
      ),
    ),
  );
}

/** What shows that each page is usable, by route. */
const PAGES: { name: string; route: string; ready: (page: Page) => Promise<unknown> }[] = [
  { name: "tools", route: "tools", ready: (page) => page.getByTestId("tool-echo").waitFor() },
  {
    name: "sessions (1,000)",
    route: "sessions",
    ready: (page) => page.getByTestId("session-row").nth(99).waitFor(),
  },
  {
    name: "session variables (5,000)",
    route: `sessions/${BIG_SESSION}`,
    ready: async (page) => {
      await page
        .getByTestId("variable-count")
        .filter({ hasText: `${VARIABLES} variables` })
        .waitFor();
      await page.getByTestId("var-row-v00000").waitFor();
    },
  },
  {
    name: "agent runs (5,000 variables)",
    route: `runs/${BIG_SESSION}`,
    ready: (page) => page.getByText("No runs recorded in this session yet").waitFor(),
  },
  {
    name: "calls and health",
    route: "calls",
    ready: async (page) => {
      await page.getByTestId("health").waitFor();
      await page.getByTestId("recent-calls").waitFor();
    },
  },
];

function record(times: Record<string, number[]>, name: string, ms: number): void {
  times[name] = [...(times[name] ?? []), ms];
}

/** Each page opened `REPEATS` times in a fresh browser context: the page's code not cached, no warm state. */
async function coldOpenTimes(browser: Browser, url: string): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = {};
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    for (const { name, route, ready } of PAGES) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      const started = performance.now();
      await page.goto(`${url}#/${route}`);
      await ready(page);
      record(times, name, performance.now() - started);
      await context.close();
    }
  }
  return times;
}

/** Each page opened `REPEATS` times from another page of an inspector already open (the URL's fragment changed). */
async function inAppOpenTimes(browser: Browser, url: string): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = {};
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${url}#/calls`);
  await page.getByTestId("health").waitFor();
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    for (const { name, route, ready } of PAGES) {
      // From a page with nothing of the next one on it, so that its content is drawn anew.
      await page.evaluate(`window.location.hash = "#/none"`);
      const started = performance.now();
      await page.evaluate(`window.location.hash = ${JSON.stringify(`#/${route}`)}`);
      await ready(page);
      record(times, name, performance.now() - started);
    }
  }
  await context.close();
  return times;
}

async function writeLatencies(browser: Browser, url: string, stub: pb.ToolBridgeClient): Promise<number[]> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${url}#/sessions/${BIG_SESSION}`);
  await page.getByTestId("watch-state").filter({ hasText: "live" }).waitFor();
  await page.getByTestId("var-row-v00000").waitFor();
  // Stamps, in the page, when each new value of the probe variable is drawn.
  await page.evaluate(`
    window.probeSeen = {};
    new MutationObserver(() => {
      const text = document.querySelector('[data-testid="var-row-a_probe"] [data-testid="var-value"]')?.textContent;
      if (text != null && window.probeSeen[text] === undefined) window.probeSeen[text] = Date.now();
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  `);
  const latencies: number[] = [];
  for (let i = 1; i <= WRITES; i++) {
    const sent = Date.now();
    await unary<pb.SetVariableResponse>((cb) =>
      stub.setSessionVariable(
        {
          sessionId: BIG_SESSION,
          variableName: "a_probe",
          value: encodeValue(i),
          metadata: undefined,
          createIfMissing: true,
        },
        cb,
      ),
    );
    const shown = await page.waitForFunction(`window.probeSeen[${JSON.stringify(String(i))}]`, undefined, {
      polling: 10,
      timeout: 10_000,
    });
    latencies.push(((await shown.jsonValue()) as number) - sent);
  }
  await context.close();
  return latencies;
}

function bundleSizes(): { file: string; bytes: number; gzip: number }[] {
  return readdirSync(UI).map((file) => {
    const body = readFileSync(`${UI}/${file}`);
    return { file, bytes: statSync(`${UI}/${file}`).size, gzip: gzipSync(body).length };
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)] ?? Number.NaN;
const max = (xs: number[]) => Math.max(...xs);
const ms = (x: number) => `${x.toFixed(0)} ms`;
const summary = (times: Record<string, number[]>) =>
  Object.fromEntries(
    Object.entries(times).map(([name, xs]) => [name, { median: median(xs), max: max(xs), samples: xs }]),
  );

function report(cold: Record<string, number[]>, inApp: Record<string, number[]>, latencies: number[]): void {
  const sizes = bundleSizes();
  const results = {
    sessions: SESSIONS,
    variables: VARIABLES,
    repeats: REPEATS,
    open_fresh_browser_ms: summary(cold),
    open_from_another_page_ms: summary(inApp),
    write_to_page_ms: {
      median: median(latencies),
      p90: quantile(latencies, 0.9),
      max: max(latencies),
      samples: latencies,
    },
    bundle: sizes,
  };
  mkdirSync(`${REPO}bench/results`, { recursive: true });
  writeFileSync(`${REPO}bench/results/inspector.json`, `${JSON.stringify(results, null, 2)}\n`);
  console.log(
    `inspector: ${SESSIONS} sessions, one of ${VARIABLES} variables; each page opened ${REPEATS} times`,
  );
  for (const [name, xs] of Object.entries(cold)) {
    const app = inApp[name] ?? [];
    console.log(
      `  ${name.padEnd(30)} fresh browser: median ${ms(median(xs))}, max ${ms(max(xs))}; ` +
        `from another page: median ${ms(median(app))}, max ${ms(max(app))}`,
    );
  }
  console.log(
    `  variable write -> page (${WRITES} writes): median ${ms(median(latencies))}, ` +
      `p90 ${ms(quantile(latencies, 0.9))}, max ${ms(max(latencies))}`,
  );
  for (const { file, bytes, gzip } of sizes) {
    console.log(
      `  bundle ${file.padEnd(32)} ${(bytes / 1024).toFixed(0)} KiB (gzip ${(gzip / 1024).toFixed(0)} KiB)`,
    );
  }
}

async function main(): Promise<void> {
  const host = await startHost({ "inspector-port": 0, "max-concurrent-sessions": SESSIONS + 10 }, [
    TEST_TOOLS,
  ]);
  const url = /inspector on (\S+)/.exec(host.stdout())?.[1] ?? "";
  const stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
  const browser = await launchChromium();
  try {
    const seeding = performance.now();
    await seed(stub);
    process.stderr.write(
      `seeded ${SESSIONS} sessions and ${VARIABLES} variables in ${ms(performance.now() - seeding)}\n`,
    );
    const cold = await coldOpenTimes(browser, url);
    const inApp = await inAppOpenTimes(browser, url);
    report(cold, inApp, await writeLatencies(browser, url, stub));
  } finally {
    stub.close();
    await browser.close();
    await host.stop();
  }
}

await main();
