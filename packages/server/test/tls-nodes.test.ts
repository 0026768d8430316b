// Hosts serving TLS on one redis-server forward calls of session tools to each other over
// TLS: each verifies the other's certificate against its CA and presents its own (the hosts
// require client certificates), so a host whose certificate another CA signed is refused,
// and a host serving TLS never forwards to one serving plaintext. And a host's TLS files
// are read again on SIGHUP: new connections get the new certificate.
import assert from "node:assert/strict";
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import { type Certificates, makeCertificates, newToken, writeTokens } from "./support/credentials.js";
import { type HostProcess, startHost } from "./support/host-process.js";
import { nodeOf, nodesOnRedis } from "./support/nodes.js";
import { waitUntil } from "./support/wait.js";

const certs: Certificates = makeCertificates();
after(() => rmSync(certs.dir, { recursive: true, force: true }));
const { url, host, client } = nodesOnRedis();

/** The principal of alice's client certificate, which owns the test's session on every host. */
const ALICE = "O=toolbridge-tests,CN=alice";

/** Flags of a host serving TLS with `cert` and requiring client certificates from the CA. */
function tlsFlags(cert: string, key: string): Record<string, string> {
  return { store: url(), "tls-cert": cert, "tls-key": key, "tls-client-ca": certs.caFile };
}

/** Alice's client of a host whose certificate `ca` signed. */
function aliceOf(target: string, ca = certs.caFile): ToolBridgeClient {
  return client(target, {
    tls: {
      ca: certs.read(ca),
      cert: certs.read(certs.aliceCert),
      key: certs.read(certs.aliceKey),
      serverName: "localhost",
    },
  });
}

describe("session tools across hosts serving TLS", () => {
  let hostA: HostProcess;
  let sessionId: string;
  let b: ToolBridgeClient;

  before(async () => {
    const [first, second] = await Promise.all([
      host(tlsFlags(certs.peerCert, certs.peerKey)),
      host(tlsFlags(certs.peerCert, certs.peerKey)),
    ]);
    assert.ok(first !== undefined && second !== undefined);
    hostA = first;
    const a = aliceOf(hostA.target);
    ({ sessionId } = await a.initializeSession());
    assert.equal(await a.executeTool("register_session_echo", { name: "mine" }), nodeOf(hostA));
    b = aliceOf(second.target);
    await b.initializeSession(sessionId);
  });

  it("are forwarded over TLS, the hosts checking each other's certificates", async () => {
    assert.deepEqual(await b.executeTool("mine", { value: 7 }), { value: 7, node: nodeOf(hostA) });
    const chunks = [];
    for await (const chunk of b.streamTool("mine_stream", { count: 2 })) chunks.push(chunk);
    assert.deepEqual(
      chunks,
      [0, 1].map((i) => ({ i, node: nodeOf(hostA) })),
    );
  });

  it("are not forwarded to a host whose certificate another CA signed, nor from it", async () => {
    const stranger = await host(tlsFlags(certs.strangerPeerCert, certs.strangerPeerKey));
    const c = aliceOf(stranger.target, certs.strangerCaFile);
    await c.initializeSession(sessionId);
    assert.equal(await c.executeTool("register_session_echo", { name: "strange" }), nodeOf(stranger));
    // B verifies the stranger's certificate against its CA, and refuses it.
    await assert.rejects(
      b.executeTool("strange", { value: 1 }),
      fails(
        ErrorType.Unavailable,
        (e) =>
          e.details.reason === "peer_certificate" &&
          e.details.node === nodeOf(stranger) &&
          /peerTlsCa/.test(e.message),
      ),
    );
    // The stranger trusts A's certificate, but A refuses the stranger's as a client certificate.
    await assert.rejects(
      c.executeTool("mine", { value: 1 }),
      fails(
        ErrorType.Unavailable,
        (e) => e.details.node === nodeOf(hostA) && /refuses this host's certificate/.test(e.message),
      ),
    );
  });

  it("are not forwarded in plaintext to a host serving plaintext", async () => {
    // A plaintext host where alice's principal has a token, so that she can use the session there.
    const token = newToken();
    const tokens = writeTokens(certs.dir, { [token]: ALICE }, "tokens-plaintext-node");
    const plaintext = await host({ store: url(), "auth-tokens-file": tokens });
    const d = client(plaintext.target, { token });
    await d.initializeSession(sessionId);
    assert.equal(await d.executeTool("register_session_echo", { name: "plain" }), nodeOf(plaintext));
    await assert.rejects(
      b.executeTool("plain", { value: 1 }),
      fails(
        ErrorType.Unavailable,
        (e) => e.details.reason === "peer_plaintext" && e.details.retriable === "false",
      ),
    );
  });
});

describe("TLS files reloaded on SIGHUP", () => {
  it("serve new connections with the new certificate; the old files stay when the new ones are bad", async () => {
    const cert = join(certs.dir, "reloaded.crt");
    const key = join(certs.dir, "reloaded.key");
    copyFileSync(certs.hostCert, cert);
    copyFileSync(certs.hostKey, key);
    const served = await startHost({ "tls-cert": cert, "tls-key": key, "log-level": "info" });
    try {
      const trusting = (ca: string) =>
        new ToolBridgeClient(served.target, { tls: { ca: certs.read(ca), serverName: "localhost" } });
      const before = trusting(certs.caFile);
      await before.initializeSession();
      const newCaOnly = trusting(certs.strangerCaFile);
      await assert.rejects(newCaOnly.initializeSession(), fails(ErrorType.CommunicationError));
      newCaOnly.close();

      copyFileSync(certs.strangerPeerCert, cert);
      copyFileSync(certs.strangerPeerKey, key);
      served.process.kill("SIGHUP");
      await waitUntil(
        () => /reloaded the TLS files/.test(served.stderr()),
        "the host logs that it reloaded the TLS files",
      );
      const after = trusting(certs.strangerCaFile);
      await after.initializeSession();
      assert.equal(await after.executeTool("add", { a: 2, b: 3 }), 5);
      const oldCaOnly = trusting(certs.caFile);
      await assert.rejects(oldCaOnly.initializeSession(), fails(ErrorType.CommunicationError));
      oldCaOnly.close();
      // The connection made before the reload keeps the certificate it was made with.
      assert.equal(await before.executeTool("add", { a: 1, b: 1 }), 2);
      before.close();

      // A key that does not fit the certificate is refused; the certificate in force stays.
      copyFileSync(certs.hostKey, key);
      served.process.kill("SIGHUP");
      await waitUntil(
        () => /cannot reload the TLS files/.test(served.stderr()),
        "the host logs that it cannot reload the TLS files",
      );
      const still = trusting(certs.strangerCaFile);
      await still.initializeSession();
      still.close();
      after.close();
      assert.equal(served.process.exitCode, null, "SIGHUP does not end the host");
    } finally {
      await served.stop();
    }
  });
});
