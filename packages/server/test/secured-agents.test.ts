// A host serving TLS and requiring tokens still runs its Python side: warm workers call back
// as the host itself (its own token, over a private Unix socket), a spawned agent gets the
// host's token or a principal's token and TLS files passed through, and one without
// credentials is refused.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { BridgeError, runPythonAgent, SessionVariableAgentStore, ToolBridgeHost } from "@toolbridge/server";
import { pino } from "pino";
import { type Certificates, makeCertificates, newToken, writeTokens } from "./support/credentials.js";
import { REPO_ROOT } from "./support/host-process.js";
import { PYTHON, WORKERS_DIR } from "./support/workers.js";

const TURNS = `${WORKERS_DIR}/agent_turns.json`;
const alice = newToken();

/** The environment without an LM choice or credentials of the person running the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  const { TOOLBRIDGE_LM: _lm, TOOLBRIDGE_TOKEN: _token, ...env } = process.env;
  return env;
}

describe("Python agents of a host with TLS and tokens", () => {
  let certs: Certificates;
  let host: ToolBridgeHost;
  let sessionId = "";

  before(async () => {
    certs = makeCertificates();
    host = new ToolBridgeHost({
      port: 0,
      logger: pino({ level: "silent" }),
      tlsCert: certs.hostCert,
      tlsKey: certs.hostKey,
      authTokensFile: writeTokens(certs.dir, { [alice]: "alice" }),
      workers: 2,
      workerModule: "pool_tools",
      workerPool: { python: PYTHON, cwd: WORKERS_DIR, env: cleanEnv() },
    });
    await host.start();
    sessionId = (await host.createSession("", {}, { owner: "alice" })).id;
  });
  after(async () => {
    await host.stop();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it("runs an agent on a warm worker, which calls back as the host over its private socket", async () => {
    assert.match(host.clientTarget ?? "", /^unix:.*host\.sock$/);
    const result = await host.workers.runAgent({
      sessionId,
      tools: ["whoami", "add"],
      inputs: { question: "What is 2 + 3?" },
      script: TURNS,
    });
    assert.equal(result.status, "succeeded", result.error);
    assert.deepEqual(result.outputs, { answer: "5" });
    const record = await host.variables(sessionId).get(`run_${result.runId}`);
    // The host's own clients are recorded by the name they give themselves.
    assert.equal(record.createdBy, "python");
    const run = await new SessionVariableAgentStore(host.variables(sessionId)).loadRun(result.runId);
    assert.deepEqual(
      run.steps.map((step) => step.toolName),
      ["whoami", "add", "finish"],
    );
  });

  it("passes a principal's token and the TLS files to a spawned agent", async () => {
    const result = await runPythonAgent({
      python: PYTHON,
      cwd: REPO_ROOT,
      env: cleanEnv(),
      address: host.address?.target ?? "",
      token: alice,
      tls: { ca: certs.caFile, serverName: "localhost" },
      sessionId,
      tools: ["whoami", "add"],
      inputs: { question: "What is 2 + 3?" },
      script: TURNS,
    });
    assert.equal(result.status, "succeeded", result.error);
    const record = await host.variables(sessionId).get(`run_${result.runId}`);
    assert.equal(record.createdBy, "alice");
    assert.equal(record.writerLabel, "python");
  });

  it("runs a spawned agent as the host with its token and client target", async () => {
    const result = await runPythonAgent({
      python: PYTHON,
      cwd: REPO_ROOT,
      env: cleanEnv(),
      address: host.clientTarget ?? "",
      token: host.hostToken,
      sessionId,
      tools: ["whoami", "add"],
      inputs: { question: "What is 2 + 3?" },
      script: TURNS,
    });
    assert.equal(result.status, "succeeded", result.error);
    assert.deepEqual(result.outputs, { answer: "5" });
    // It ran as the host: recorded, like the host's warm workers, by the name it gives itself.
    const record = await host.variables(sessionId).get(`run_${result.runId}`);
    assert.equal(record.createdBy, "python");
    const run = await new SessionVariableAgentStore(host.variables(sessionId)).loadRun(result.runId);
    assert.deepEqual(
      run.steps.map((step) => step.toolName),
      ["whoami", "add", "finish"],
    );
  });

  it("refuses a spawned agent without a token", async () => {
    await assert.rejects(
      runPythonAgent({
        python: PYTHON,
        cwd: REPO_ROOT,
        env: cleanEnv(),
        address: host.address?.target ?? "",
        tls: { ca: certs.caFile, serverName: "localhost" },
        sessionId,
        inputs: { question: "?" },
        script: TURNS,
      }),
      (error: unknown) => {
        assert.ok(error instanceof BridgeError, String(error));
        assert.equal(error.type, "Unavailable");
        assert.equal(error.details.exit_code, "3");
        assert.match(error.details.stderr ?? "", /UNAUTHENTICATED/);
        return true;
      },
    );
  });
});
