// The host's MCP endpoint against the official TypeScript MCP client (both protocol eras) and
// raw HTTP requests: DNS rebinding (Host, Origin), client certificates over HTTPS, the bound on
// 2025-era sessions, the request size limit, and the refusal of a reachable bind without TLS
// or authentication.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { after, before, describe, it } from "node:test";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { type Certificates, makeCertificates, newToken, writeTokens } from "./support/credentials.js";
import { CLI, type HostProcess, REPO_ROOT, startHost, TEST_TOOLS } from "./support/host-process.js";

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "test", version: "1" } },
});

/** The MCP endpoint the host's CLI printed. */
function mcpUrl(host: HostProcess): string {
  const url = /toolbridge mcp on (\S+)/.exec(host.stdout())?.[1];
  assert.ok(url, `no MCP URL in the host's output:\n${host.stdout()}`);
  return url;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** POSTs `body` to `url` with `headers` (Host may be forged: node:http sends it as given). */
function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {},
): Promise<Answer> {
  const send = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers,
        },
        ...tls,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function connect(url: string, mode: "auto" | "legacy"): Promise<Client> {
  const client = new Client(
    { name: "toolbridge-test", version: "1.0.0" },
    mode === "auto" ? { versionNegotiation: { mode: "auto" } } : {},
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

describe("the MCP endpoint", () => {
  let host: HostProcess;
  let url: string;

  before(async () => {
    host = await startHost({ "mcp-port": 0, "mcp-max-sessions": 2, "max-message-bytes": 65_536 });
    url = mcpUrl(host);
  });

  after(async () => {
    assert.equal(await host.stop(), 0, host.stderr());
  });

  for (const mode of ["auto", "legacy"] as const) {
    it(`serves the official TypeScript client (${mode === "auto" ? "2026-07-28" : "2025-11-25"})`, async () => {
      const client = await connect(url, mode);
      try {
        assert.equal(client.getProtocolEra(), mode === "auto" ? "modern" : "legacy");
        const { tools } = await client.listTools();
        const add = tools.find((tool) => tool.name === "add");
        assert.deepEqual(add?.inputSchema.required, ["a", "b"]);
        const sum = await client.callTool({ name: "add", arguments: { a: 2, b: 40 } });
        assert.deepEqual(sum.content, [{ type: "text", text: "42" }]);
        const progress: (string | undefined)[] = [];
        const counted = await client.callTool(
          { name: "count", arguments: { n: 2 } },
          { onprogress: (p) => progress.push(p.message) },
        );
        assert.deepEqual(progress, ['{"i":0}', '{"i":1}']);
        assert.equal(counted.isError, undefined);
      } finally {
        await client.close();
      }
    });
  }

  it("answers only the Host names it is reached by and the Origins it allows", async () => {
    assert.equal((await post(url, INITIALIZE)).status, 200);
    const rebound = await post(url, INITIALIZE, { host: "attacker.example:80" });
    assert.equal(rebound.status, 403);
    assert.match(rebound.body, /mcpAllowedHosts/);
    const crossSite = await post(url, INITIALIZE, { origin: "https://attacker.example" });
    assert.equal(crossSite.status, 403);
    assert.match(crossSite.body, /mcpAllowedOrigins/);
    assert.equal((await post(url, INITIALIZE, { origin: "http://localhost:5173" })).status, 200);
  });

  it("refuses a request over the message limit before reading it all", async () => {
    const big = JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "echo", arguments: { value: "x".repeat(70_000) } },
    });
    const refused = await post(url, big);
    assert.equal(refused.status, 413);
    assert.match(refused.body, /maxMessageBytes/);
  });

  it("keeps mcpMaxSessions 2025-era sessions, closing the one idle longest for a new one", async () => {
    const [first, second, third] = [
      await connect(url, "legacy"),
      await connect(url, "legacy"),
      await connect(url, "legacy"),
    ];
    try {
      await assert.rejects(first.listTools(), /Session not found/);
      assert.ok((await second.listTools()).tools.length > 0);
      assert.ok((await third.listTools()).tools.length > 0);
    } finally {
      for (const client of [first, second, third]) await client.close();
    }
  });
});

describe("the MCP endpoint over HTTPS", () => {
  let certs: Certificates;
  let host: HostProcess;

  before(async () => {
    certs = makeCertificates();
    host = await startHost({
      "mcp-port": 0,
      "tls-cert": certs.hostCert,
      "tls-key": certs.hostKey,
      "tls-client-ca": certs.caFile,
    });
  });

  after(async () => {
    await host.stop();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it("takes a client certificate's subject as the principal, as the gRPC port does", async () => {
    const url = mcpUrl(host);
    assert.match(url, /^https:/);
    const ca = certs.read(certs.caFile);
    const withCertificate = await post(
      url,
      INITIALIZE,
      {},
      {
        ca,
        cert: certs.read(certs.aliceCert),
        key: certs.read(certs.aliceKey),
      },
    );
    assert.equal(withCertificate.status, 200, withCertificate.body);
    const stranger = await post(
      url,
      INITIALIZE,
      {},
      {
        ca,
        cert: certs.read(certs.strangerCert),
        key: certs.read(certs.strangerKey),
      },
    );
    assert.equal(stranger.status, 401);
    assert.equal((await post(url, INITIALIZE, {}, { ca })).status, 401);
  });
});

/** Runs `toolbridge serve` with `flags`; resolves with its exit code once it exits or serves. */
async function serveExitCode(flags: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, "serve", "--tools", TEST_TOOLS, "--port", "0", ...flags], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    if (/serving on/.test(text)) child.kill("SIGTERM");
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}

describe("the MCP endpoint's safe defaults", () => {
  it("refuses an interface other machines reach without TLS or authentication", async () => {
    const refused = await serveExitCode(["--mcp-port", "0", "--mcp-host", "0.0.0.0"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /refusing to listen on 0\.0\.0\.0/);
    const certs = makeCertificates();
    try {
      const tokens = writeTokens(certs.dir, { [newToken()]: "ops" });
      const served = await serveExitCode([
        "--mcp-port",
        "0",
        "--mcp-host",
        "0.0.0.0",
        "--auth-tokens-file",
        tokens,
      ]);
      assert.equal(served.code, 0, served.stderr);
    } finally {
      rmSync(certs.dir, { recursive: true, force: true });
    }
  });
});
