// The web inspector in real headless Chromium against one real host (the CLI, with tokens, a
// Python worker and the inspector served on its own port): the tools page and its generated
// forms, a streaming call cancelled from the page, variables written from Python arriving
// live, a ReAct run from Python followed step by step, what each principal may see, and
// `toolbridge inspect` against the same host. Each page's screenshot is kept in
// test-artifacts/inspector (the pictures in docs/images come from there).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ToolBridgeClient } from "@toolbridge/client";
import type { Browser, Page } from "playwright-core";
import { type InspectorPage, launchChromium, openInspector, screenshot } from "./support/browser.js";
import { newToken } from "./support/credentials.js";
import { CLI, type HostProcess, REPO_ROOT, startHost, TEST_TOOLS } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";
import { PYTHON } from "./support/workers.js";

const INSPECTOR_TOOLS = `${REPO_ROOT}testdata/tools/inspector-tools.ts`;
const POSTAGE_TOOLS = `${REPO_ROOT}testdata/inspector/postage_tools.py`;
const PYTHON_CLIENT = `${REPO_ROOT}testdata/inspector/python_client.py`;
const TOKENS = { alice: newToken(), bob: newToken(), ops: newToken() };
const ALICE_SESSION = "inspector-alice";
const BOB_SESSION = "inspector-bob";

let host: HostProcess;
let browser: Browser;
let inspectorUrl = "";
let dir = "";
const clients: ToolBridgeClient[] = [];
const pages: InspectorPage[] = [];

/** A client of the test host as `who`, attached to `sessionId`. */
async function clientOf(who: keyof typeof TOKENS, sessionId: string): Promise<ToolBridgeClient> {
  const client = new ToolBridgeClient(host.target, { token: TOKENS[who] });
  clients.push(client);
  await client.initializeSession(sessionId);
  return client;
}

async function open(route: string, who?: keyof typeof TOKENS): Promise<Page> {
  const opened = await openInspector(
    browser,
    inspectorUrl,
    route,
    who === undefined ? undefined : TOKENS[who],
  );
  pages.push(opened);
  return opened.page;
}

/** Runs testdata/inspector/python_client.py as alice; resolves with the process once it printed `line`. */
async function python(args: string[], line: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(
    PYTHON,
    [PYTHON_CLIENT, ...args, "--address", host.target, "--token", TOKENS.alice, "--session", ALICE_SESSION],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TOOLBRIDGE_LM: "" } },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitUntil(() => line.test(output), `python_client.py ${args[0]} prints ${line}`, {
    tries: 1200,
    intervalMs: 50,
    explain: () => output,
  });
  return { child, output: () => output };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toolbridge-inspector-"));
  const tokens = join(dir, "tokens");
  writeFileSync(
    tokens,
    `${TOKENS.alice} alice\n${TOKENS.bob} bob\n${TOKENS.ops} ops team\noperator ops team\n`,
    { mode: 0o600 },
  );
  [host, browser] = await Promise.all([
    startHost(
      {
        "auth-tokens-file": tokens,
        "inspector-port": 0,
        workers: 1,
        "worker-module": POSTAGE_TOOLS,
        "worker-python": PYTHON,
        "worker-preload-agents": "false",
      },
      [TEST_TOOLS, INSPECTOR_TOOLS],
    ),
    launchChromium(),
  ]);
  inspectorUrl = /inspector on (\S+)/.exec(host.stdout())?.[1] ?? "";
  assert.match(inspectorUrl, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  await clientOf("alice", ALICE_SESSION);
  await clientOf("bob", BOB_SESSION);
});

after(async () => {
  for (const opened of pages) {
    assert.deepEqual(opened.errors, [], "the page threw no error");
    await opened.close();
  }
  for (const client of clients) client.close();
  await browser?.close();
  await host?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("serving the inspector from a host", () => {
  it("refuses an interface other machines reach without TLS or authentication", {
    timeout: 30_000,
  }, async () => {
    const refused = spawn(
      process.execPath,
      [
        CLI,
        "serve",
        "--tools",
        TEST_TOOLS,
        "--port",
        "0",
        "--inspector-port",
        "0",
        "--inspector-host",
        "0.0.0.0",
      ],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    refused.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = (await once(refused, "exit")) as [number | null];
    assert.equal(code, 2);
    assert.match(
      stderr,
      /refusing to listen on 0\.0\.0\.0, reachable from other machines, without TLS or authentication/,
    );
  });
});

describe("the inspector in headless Chromium", () => {
  it("lists the registry: the host's tools and the Python worker's", { timeout: 60_000 }, async () => {
    const page = await open("tools", "alice");
    const list = page.getByTestId("tool-list");
    for (const name of ["echo", "count", "quote", "scale", "py_postage"]) {
      await list.getByTestId(`tool-${name}`).waitFor();
    }
    await page.getByTestId("tool-py_postage").getByText("python worker").waitFor();
    await page.getByTestId("tool-py_postage").click();
    await page.getByTestId("tool-title").filter({ hasText: "py_postage" }).waitFor();
    // pydantic's $defs/$ref: the form shows the parcel model's fields once a parcel is added.
    await page.getByTestId("tool-form").getByRole("button", { name: /add/i }).first().click();
    await page.locator("#root_parcels_0_weight_kg").waitFor();
    await screenshot(page, "tools");
  });

  it("calls a tool from its generated form and shows the typed result", { timeout: 60_000 }, async () => {
    const page = await open("tools/scale", "alice");
    await page.locator("#root_x").fill("1.5");
    await page.getByRole("button", { name: "Call" }).click();
    // 1.5 x 2 is 3, a float by the output schema: the page shows 3.0, not 3.
    const result = page.getByTestId("call-result").locator("code");
    await result.filter({ hasText: /^3\.0$/ }).waitFor();
    assert.equal(await result.getAttribute("data-kind"), "float");
    assert.match((await page.getByTestId("raw response").textContent()) ?? "", /"float_value": 3/);

    await page.goto(`${inspectorUrl}#/tools/describe_args`);
    await page.locator("#root_name").fill("ada");
    await page.locator("#root_count").fill("3");
    await page.getByRole("button", { name: "Call" }).click();
    const count = page.getByTestId("call-result").locator('code[data-kind="int"]', { hasText: /^3$/ });
    await count.waitFor();
    assert.match((await page.getByTestId("raw request").textContent()) ?? "", /"int_value": "3"/);
    await page.getByRole("tab", { name: "Python" }).click();
    assert.match(
      (await page.getByTestId("python").textContent()) ?? "",
      /execute_tool\("describe_args", name="ada", count=3/,
    );
    await page.getByRole("tab", { name: "grpcurl" }).click();
    assert.match(
      (await page.getByTestId("grpcurl").textContent()) ?? "",
      /toolbridge\.v1\.ToolBridge\/ExecuteTool/,
    );

    // $defs and $ref, an array of objects (at least one: the form starts with one), an enum
    // and a nested object with defaults.
    await page.goto(`${inspectorUrl}#/tools/quote`);
    await page.locator("#root_items_0_sku").fill("tee");
    await page.locator("#root_items_0_quantity").fill("2");
    await page.locator("#root_items_0_size").click();
    await page.getByRole("option", { name: "M" }).click();
    await page.getByRole("button", { name: "Call" }).click();
    await page
      .getByTestId("call-result")
      .locator('code[data-kind="float"]', { hasText: /^29\.0$/ })
      .waitFor();
    await screenshot(page, "tool-call");
  });

  it("streams a tool's chunks and cancels it: the tool sees its signal", { timeout: 60_000 }, async () => {
    const alice = await clientOf("alice", ALICE_SESSION);
    const page = await open("tools/count", "alice");
    await page.locator("#root_n").fill("100000");
    await page.locator("#root_delay_ms").fill("50");
    await page.locator("#root_tag").fill("inspector-stream");
    await page.getByRole("button", { name: "Stream" }).click();
    await page.getByTestId("chunk").nth(2).waitFor();
    await screenshot(page, "tool-stream");
    await page.getByTestId("cancel-call").click();
    await page.getByTestId("call-status").filter({ hasText: "cancelled" }).waitFor();
    // The tool records its abort in the host's process; ask for it until it is there (bounded).
    const aborted = (events: { event: string; detail: string }[]) =>
      events.find((e) => e.event === "aborted")?.detail === "Cancelled";
    let events: { event: string; detail: string }[] = [];
    await waitUntil(
      async () => {
        events = (await alice.executeTool("events", { tag: "inspector-stream" })) as typeof events;
        return aborted(events);
      },
      "the tool saw its abort signal (Cancelled)",
      { tries: 100, intervalMs: 100, explain: () => JSON.stringify(events) },
    );
  });

  it("shows a variable written from Python within a second, and checks edits", {
    timeout: 90_000,
  }, async () => {
    const page = await open(`sessions/${ALICE_SESSION}`, "alice");
    await page.getByTestId("watch-state").filter({ hasText: "live" }).waitFor();
    const writer = await python(["write"], /written greeting 1/);
    await page
      .getByTestId("var-row-greeting")
      .getByTestId("var-value")
      .filter({ hasText: '"hello from python"' })
      .waitFor({ timeout: 1000 });

    await waitUntil(() => /declared limit 1/.test(writer.output()), "python declares limit", {
      tries: 600,
      intervalMs: 50,
      explain: writer.output,
    });
    const row = page.getByTestId("var-row-limit");
    await row.waitFor({ timeout: 1000 });
    await row.click();
    const form = page.getByTestId("variable-form");
    await form.getByLabel("value").fill("42");
    await form.getByTestId("variable-save").click();
    await form.getByTestId("variable-problem").filter({ hasText: "must be at most 10 (max)" }).waitFor();
    assert.equal(await row.getAttribute("data-version"), "1", "the page sent nothing");
    await form.getByLabel("value").fill("7");
    await form.getByTestId("variable-save").click();
    await page.getByTestId("var-row-limit").and(page.locator('[data-version="2"]')).waitFor();
    await page.getByTestId("variable-history").locator("tr").nth(1).waitFor();
    await screenshot(page, "variables");
  });

  it("follows a ReAct run started from Python step by step", { timeout: 180_000 }, async () => {
    const release = join(dir, "release-agent");
    const page = await open(`runs/${ALICE_SESSION}`, "alice");
    const agent = await python(["agent", "--release", release], /^/);
    const explain = (error: unknown) => {
      throw new Error(`${String(error)}\npython_client.py agent wrote:\n${agent.output()}`);
    };
    // The run waits in its second tool call until the release file exists: the first step
    // is on the page while the run is still running.
    const timeline = page.getByTestId("run-timeline");
    await timeline.getByTestId("run-step").first().waitFor({ timeout: 90_000 }).catch(explain);
    await timeline.getByTestId("run-status").filter({ hasText: "running" }).waitFor();
    assert.match((await timeline.getByTestId("step-call").first().textContent()) ?? "", /add\(a=2, b=3\)/);
    await screenshot(page, "agent-run-live");
    writeFileSync(release, "");
    await timeline
      .getByTestId("run-status")
      .filter({ hasText: "succeeded" })
      .waitFor({ timeout: 60_000 })
      .catch(explain);
    assert.equal(await timeline.getByTestId("run-step").count(), 3);
    assert.equal(await timeline.getByTestId("step-duration").count(), 3, "each step shows its duration");
    await timeline.getByTestId("run-outputs").filter({ hasText: '"5"' }).waitFor();
    await waitUntil(() => agent.child.exitCode !== null, "the agent's process ends", {
      tries: 600,
      intervalMs: 50,
      explain: agent.output,
    });
    assert.match(agent.output(), /run succeeded/);
    await screenshot(page, "agent-run");
  });

  it("shows bob none of alice's sessions, and an operator every session", { timeout: 60_000 }, async () => {
    const page = await open("sessions");
    await page.getByLabel("token").fill(TOKENS.bob);
    await page.getByRole("button", { name: "Use token" }).click();
    await page.getByTestId("principal").filter({ hasText: /^bob$/ }).waitFor();
    const table = page.getByTestId("sessions-table");
    await table.getByRole("link", { name: BOB_SESSION }).waitFor();
    assert.equal(await table.getByRole("link", { name: ALICE_SESSION }).count(), 0);
    await page.goto(`${inspectorUrl}#/sessions/${ALICE_SESSION}`);
    await page.getByText("SessionNotFound").first().waitFor();

    const operator = await open("sessions", "ops");
    await operator.getByTestId("operator").waitFor();
    const all = operator.getByTestId("sessions-table");
    await all.getByRole("link", { name: ALICE_SESSION }).waitFor();
    await all.getByRole("link", { name: BOB_SESSION }).waitFor();
    await screenshot(operator, "sessions");
  });

  it("shows recent calls, per-tool charts, the worker and the host's health", {
    timeout: 60_000,
  }, async () => {
    const page = await open("calls", "ops");
    await page
      .getByTestId("recent-calls")
      .getByRole("cell", { name: "scale", exact: true })
      .first()
      .waitFor();
    await page.getByTestId("recent-calls").getByRole("cell", { name: "gRPC", exact: true }).first().waitFor();
    await page.getByTestId("workers").getByText("ready").waitFor();
    await page.getByTestId("health").getByText("host: serving").waitFor();
    await page.getByTestId("tool-stats").getByRole("cell", { name: "count", exact: true }).waitFor();
    await screenshot(page, "calls");
  });

  it("toolbridge inspect serves the same pages against any host, with its token", {
    timeout: 60_000,
  }, async () => {
    const inspect = spawn(process.execPath, [CLI, "inspect", host.target, "--token", TOKENS.alice], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    inspect.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      await waitUntil(() => /on (http\S+#key=\S+)/.test(output), "inspect prints its URL", {
        tries: 400,
        intervalMs: 50,
        explain: () => output,
      });
      const url = /on (http\S+#key=\S+)/.exec(output)?.[1] ?? "";
      const page = await open("", undefined);
      await page.goto(url);
      await page
        .getByTestId("principal")
        .filter({ hasText: /^alice$/ })
        .waitFor();

      // Without the key from the printed URL, the token stays unused.
      const keyless = await open("sessions");
      await keyless.goto(url.replace(/#.*$/, "#/sessions"));
      await keyless
        .getByTestId("host-error")
        .filter({ hasText: /not authenticated/ })
        .waitFor();

      // A page of another site reaching it through DNS rebinding sends its own Host, and one
      // posting to it from its own origin an Origin: both refused.
      const status = (headers: Record<string, string>) =>
        new Promise<number | undefined>((resolve, reject) => {
          request(
            url.replace(/#.*$/, "api/toolbridge.v1.ToolBridge/DescribeHost"),
            { method: "POST", headers },
            (response) => {
              response.resume();
              resolve(response.statusCode);
            },
          )
            .on("error", reject)
            .end("{}");
        });
      const json = { "content-type": "application/json" };
      assert.equal(await status({ ...json, host: "rebound.example:80" }), 403);
      assert.equal(await status({ ...json, origin: "http://elsewhere.example" }), 403);
      assert.equal(
        await status(json),
        401,
        "the same request of its own is answered (unauthenticated: no key)",
      );
    } finally {
      inspect.kill("SIGTERM");
      await once(inspect, "exit");
    }
  });
});
