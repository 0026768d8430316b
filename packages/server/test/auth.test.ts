// Transport security and authentication against the real host CLI over loopback: TLS and
// mTLS handshakes with certificates made by the test, bearer tokens (missing, wrong,
// reloaded on SIGHUP), what health, reflection and /metrics ask for, and the refusal to
// listen on a reachable interface without TLS or authentication.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { rmSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { HealthCheckResponse_ServingStatus, HealthClient } from "../src/gen/grpc/health/v1/health.js";
import { ServerReflectionClient } from "../src/gen/grpc/reflection/v1/reflection.js";
import { fails } from "./support/assertions.js";
import { type Certificates, makeCertificates, newToken, writeTokens } from "./support/credentials.js";
import { CLI, type HostProcess, REPO_ROOT, startHost, TEST_TOOLS } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";

const unauthenticated = fails(
  ErrorType.CommunicationError,
  (e) => e.grpcCode === grpc.status.UNAUTHENTICATED,
);
const unavailable = fails(ErrorType.CommunicationError, (e) => e.grpcCode === grpc.status.UNAVAILABLE);

let certs: Certificates;

before(() => {
  certs = makeCertificates();
});

after(() => {
  rmSync(certs.dir, { recursive: true, force: true });
});

/** True when a grpc.health.v1 Check over `credentials` answers SERVING; rejects with the call's status. */
function standardHealth(target: string, metadata = new grpc.Metadata()): Promise<boolean> {
  const client = new HealthClient(target, grpc.credentials.createInsecure());
  return new Promise<boolean>((resolve, reject) => {
    client.check({ service: "" }, metadata, (error, response) => {
      client.close();
      if (error !== null) reject(error);
      else resolve(response.status === HealthCheckResponse_ServingStatus.SERVING);
    });
  });
}

/** The services reflection lists; rejects with the stream's status. */
function reflectionServices(target: string, metadata = new grpc.Metadata()): Promise<string[]> {
  const client = new ServerReflectionClient(target, grpc.credentials.createInsecure());
  return new Promise<string[]>((resolve, reject) => {
    const call = client.serverReflectionInfo(metadata);
    call.on("data", (response) => {
      call.end();
      client.close();
      const answer = response.messageResponse;
      resolve(
        answer?.$case === "listServicesResponse"
          ? answer.value.service.map((s: { name: string }) => s.name)
          : [],
      );
    });
    call.on("error", (error) => {
      client.close();
      reject(error);
    });
    call.write({ host: "", messageRequest: { $case: "listServices", value: "" } });
  });
}

function withToken(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

describe("TLS", () => {
  let host: HostProcess;

  before(async () => {
    host = await startHost({ "tls-cert": certs.hostCert, "tls-key": certs.hostKey });
  });
  after(async () => {
    await host.stop();
  });

  it("serves a client that trusts the host's CA, over TLS only", async () => {
    const client = new ToolBridgeClient(host.target, {
      tls: { ca: certs.read(certs.caFile), serverName: "localhost" },
    });
    await client.initializeSession();
    assert.equal(await client.executeTool("add", { a: 2, b: 3 }), 5);
    assert.equal((await client.sessionInfo()).owner, "@anonymous");
    client.close();

    const plaintext = new ToolBridgeClient(host.target);
    await assert.rejects(plaintext.initializeSession(), unavailable);
    plaintext.close();
  });

  it("is refused by a client that does not trust the host's certificate", async () => {
    const client = new ToolBridgeClient(host.target, {
      tls: { ca: certs.read(`${certs.dir}/stranger-ca.crt`), serverName: "localhost" },
    });
    await assert.rejects(client.initializeSession(), unavailable);
    client.close();
  });
});

describe("mTLS", () => {
  let host: HostProcess;

  before(async () => {
    host = await startHost({
      "tls-cert": certs.hostCert,
      "tls-key": certs.hostKey,
      "tls-client-ca": certs.caFile,
    });
  });
  after(async () => {
    await host.stop();
  });

  it("makes the client certificate's subject the principal", async () => {
    const client = new ToolBridgeClient(host.target, {
      tls: {
        ca: certs.read(certs.caFile),
        cert: certs.read(certs.aliceCert),
        key: certs.read(certs.aliceKey),
        serverName: "localhost",
      },
    });
    await client.initializeSession();
    assert.equal((await client.sessionInfo()).owner, "O=toolbridge-tests,CN=alice");
    await client.setVariable("note", "hi");
    const note = await client.getVariable("note");
    assert.equal(note.createdBy, "O=toolbridge-tests,CN=alice");
    assert.equal(note.writerLabel, "typescript");
    client.close();
  });

  it("refuses a client without a certificate, or with one another CA signed", async () => {
    const anonymous = new ToolBridgeClient(host.target, {
      tls: { ca: certs.read(certs.caFile), serverName: "localhost" },
    });
    await assert.rejects(anonymous.initializeSession(), (error: unknown) => {
      assert.ok(error instanceof BridgeError && error.type === ErrorType.CommunicationError);
      return true;
    });
    anonymous.close();
    const stranger = new ToolBridgeClient(host.target, {
      tls: {
        ca: certs.read(certs.caFile),
        cert: certs.read(certs.strangerCert),
        key: certs.read(certs.strangerKey),
        serverName: "localhost",
      },
    });
    await assert.rejects(stranger.initializeSession(), (error: unknown) => {
      assert.ok(error instanceof BridgeError && error.type === ErrorType.CommunicationError);
      return true;
    });
    stranger.close();
  });
});

describe("bearer tokens", () => {
  let host: HostProcess;
  let tokensFile: string;
  const alice = newToken();
  const bob = newToken();

  before(async () => {
    tokensFile = writeTokens(certs.dir, { [alice]: "alice", [bob]: "bob" }, "tokens-cli");
    host = await startHost({ "auth-tokens-file": tokensFile, "metrics-port": 0 });
  });
  after(async () => {
    await host.stop();
  });

  it("refuses a call without a token, or with a wrong one, with UNAUTHENTICATED", async () => {
    for (const options of [{}, { token: newToken() }, { token: `${alice}x` }]) {
      const client = new ToolBridgeClient(host.target, options);
      await assert.rejects(client.initializeSession(), unauthenticated);
      await assert.rejects(client.getMetrics(), unauthenticated);
      client.close();
    }
    // A malformed authorization header is refused the same way.
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Basic ${alice}`);
    await assert.rejects(reflectionServices(host.target, metadata), { code: grpc.status.UNAUTHENTICATED });
  });

  it("serves a client with a valid token as its principal", async () => {
    const client = new ToolBridgeClient(host.target, { token: alice });
    await client.initializeSession("", { purpose: "test" });
    const info = await client.sessionInfo();
    assert.equal(info.owner, "alice");
    await client.setVariable("plan", ["a"]);
    const plan = await client.getVariable("plan");
    assert.deepEqual([plan.createdBy, plan.updatedBy, plan.writerLabel], ["alice", "alice", "typescript"]);
    client.close();
  });

  it("answers health without a token, and reflection and /metrics only with one", async () => {
    assert.equal(await standardHealth(host.target), true);
    const client = new ToolBridgeClient(host.target);
    assert.equal(await client.healthCheck(), true);
    client.close();

    await assert.rejects(reflectionServices(host.target), { code: grpc.status.UNAUTHENTICATED });
    assert.ok((await reflectionServices(host.target, withToken(bob))).includes("toolbridge.v1.ToolBridge"));

    const url = host.metricsUrl as string;
    const refused = await fetch(url);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get("www-authenticate"), "Bearer");
    const scraped = await fetch(url, { headers: { authorization: `Bearer ${bob}` } });
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /toolbridge_/);
  });

  it("re-reads the tokens file on SIGHUP, and keeps the old tokens when the new file is bad", async () => {
    const carol = newToken();
    writeTokens(certs.dir, { [carol]: "carol", [bob]: "bob" }, "tokens-cli");
    host.process.kill("SIGHUP");
    const carolClient = new ToolBridgeClient(host.target, { token: carol });
    await waitUntil(
      async () => {
        try {
          await carolClient.initializeSession();
          return true;
        } catch {
          return false;
        }
      },
      "carol's token is accepted",
      { tries: 250 },
    );
    const aliceClient = new ToolBridgeClient(host.target, { token: alice });
    await assert.rejects(aliceClient.initializeSession(), unauthenticated);

    writeFileSync(tokensFile, `${newToken()} @host\nshort carol\n`);
    host.process.kill("SIGHUP");
    await waitUntil(
      () => /cannot reload the tokens file/.test(host.stderr()),
      "the host logs that it cannot reload the tokens file",
      { tries: 250 },
    );
    assert.equal((await carolClient.initializeSession()).created, true, "carol's token still works");
    assert.equal(host.process.exitCode, null, "SIGHUP does not end the host");
    carolClient.close();
    aliceClient.close();
  });
});

/** Runs the CLI to its exit; resolves with its exit code and stderr. */
async function runCli(flags: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, "serve", "--tools", TEST_TOOLS, "--port", "0", ...flags], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
    // A host that did start is stopped at once: the test only needs to know it would serve.
    if (/serving on/.test(stdout)) child.kill("SIGTERM");
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}

describe("safe defaults", () => {
  it("refuses to listen on every interface without TLS or authentication, unless --insecure", async () => {
    const refused = await runCli(["--host", "0.0.0.0"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /refusing to listen on 0\.0\.0\.0, reachable from other machines/);
    assert.match(refused.stderr, /--tls-cert/);
    assert.match(refused.stderr, /--insecure true/);

    const metricsOpen = await runCli(["--metrics-port", "0", "--metrics-host", "0.0.0.0"]);
    assert.equal(metricsOpen.code, 2);

    assert.equal((await runCli(["--host", "0.0.0.0", "--insecure", "true"])).code, 0);
    const tokens = writeTokens(certs.dir, { [newToken()]: "ops" }, "tokens-bind");
    assert.equal((await runCli(["--host", "0.0.0.0", "--auth-tokens-file", tokens])).code, 0);
    assert.equal(
      (await runCli(["--host", "0.0.0.0", "--tls-cert", certs.hostCert, "--tls-key", certs.hostKey])).code,
      0,
    );
  });

  it("stops at start-up with a message for unreadable TLS files and bad tokens files", async () => {
    const missing = await runCli(["--tls-cert", `${certs.dir}/nope.crt`, "--tls-key", certs.hostKey]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read tlsCert .*nope\.crt/);
    const halfTls = await runCli(["--tls-cert", certs.hostCert]);
    assert.equal(halfTls.code, 2);
    assert.match(halfTls.stderr, /TLS needs both tlsCert and tlsKey/);
    const weak = writeTokens(certs.dir, { short: "alice" }, "tokens-weak");
    const refused = await runCli(["--auth-tokens-file", weak]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /a token is shorter than 16 characters/);
  });
});
