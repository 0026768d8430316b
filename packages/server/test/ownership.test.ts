// Sessions owned by their principal, against the real host CLI over loopback: principal B
// cannot see, read, write, watch, call tools in or clean up principal A's session (every
// RPC answers SessionNotFound, worded as for an id that does not exist), nor take its id
// after a host restart, with the memory store and with the Redis store.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BridgeError, ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import { newToken, writeTokens } from "./support/credentials.js";
import { type HostProcess, startHost } from "./support/host-process.js";
import { type RedisServer, startRedis } from "./support/redis-server.js";

const alice = newToken();
const bob = newToken();
let dir: string;
let tokensFile: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "toolbridge-owners-"));
  tokensFile = writeTokens(dir, { [alice]: "alice", [bob]: "bob" });
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Points `client` at `sessionId` without InitializeSession (which would refuse): what a
 * client that learned another principal's session id could send.
 */
function aimAt(client: ToolBridgeClient, sessionId: string): ToolBridgeClient {
  (client as unknown as { currentSession: string }).currentSession = sessionId;
  return client;
}

/** Runs every session RPC as `client` and returns each one's error message ("" when it succeeded). */
async function everyRpc(client: ToolBridgeClient): Promise<Record<string, string>> {
  const outcome = async (run: () => Promise<unknown>): Promise<string> => {
    try {
      await run();
      return "";
    } catch (error) {
      assert.ok(error instanceof BridgeError, String(error));
      return `${error.type}: ${error.message}`;
    }
  };
  const watch = async () => {
    for await (const _ of client.watchVariables(["plan"], { includeInitialValues: true })) return;
  };
  const stream = async () => {
    for await (const _ of client.streamTool("count", { n: 2 })) return;
  };
  const batch = async () => {
    const [first] = await client.executeBatch([{ toolId: "add", kwargs: { a: 1, b: 2 } }]);
    if (first instanceof Error) throw first;
  };
  return {
    GetSessionInfo: await outcome(() => client.sessionInfo()),
    Heartbeat: await outcome(() => client.heartbeat()),
    ListTools: await outcome(() => client.listTools()),
    ExecuteTool: await outcome(() => client.executeTool("add", { a: 1, b: 2 })),
    StreamTool: await outcome(stream),
    BatchExecuteTools: await outcome(batch),
    GetSessionVariable: await outcome(() => client.getVariable("plan")),
    SetSessionVariable: await outcome(() => client.setVariable("plan", ["taken over"])),
    ListSessionVariables: await outcome(() => client.listVariables()),
    DeleteSessionVariable: await outcome(() => client.deleteVariable("plan")),
    WatchSessionVariables: await outcome(watch),
    CleanupSession: await outcome(async () => {
      // The client's cleanup() treats SessionNotFound as done; the host's answer is what counts.
      const info = await client.sessionInfo().catch((error: unknown) => error);
      if (info instanceof Error) throw info;
      await client.cleanup();
    }),
  };
}

describe("sessions owned by their principal", () => {
  let host: HostProcess;

  before(async () => {
    host = await startHost({ "auth-tokens-file": tokensFile });
  });
  after(async () => {
    await host.stop();
  });

  it("gives principal B SessionNotFound for every RPC on A's session, worded as for no session", async () => {
    const a = new ToolBridgeClient(host.target, { token: alice });
    const { sessionId } = await a.initializeSession("shared-name-a");
    await a.setVariable("plan", ["search", "answer"]);

    const b = new ToolBridgeClient(host.target, { token: bob });
    await assert.rejects(
      b.initializeSession(sessionId),
      fails(ErrorType.SessionNotFound, (e) => !/alice|owner|belongs/.test(e.message)),
    );
    const onTheirs = await everyRpc(aimAt(b, sessionId));
    const onNothing = await everyRpc(
      aimAt(new ToolBridgeClient(host.target, { token: bob }), "no-such-session"),
    );
    for (const [rpc, message] of Object.entries(onTheirs)) {
      assert.match(message, /^SessionNotFound: /, `${rpc} on A's session`);
      assert.equal(
        message.replaceAll(sessionId, "ID"),
        onNothing[rpc]?.replaceAll("no-such-session", "ID"),
        rpc,
      );
    }

    // Nothing B tried changed A's session.
    assert.deepEqual((await a.getVariable("plan")).value, ["search", "answer"]);
    assert.equal((await a.getVariable("plan")).version, 1);
    assert.equal((await a.sessionInfo()).owner, "alice");
    await a.cleanup();
    a.close();
    b.close();
  });

  it("lets each principal use its own sessions, and the same id names one session only", async () => {
    const b = new ToolBridgeClient(host.target, { token: bob });
    const mine = await b.initializeSession("bobs-session");
    assert.equal(mine.created, true);
    const again = new ToolBridgeClient(host.target, { token: bob });
    assert.equal((await again.initializeSession("bobs-session")).created, false);
    await again.setVariable("x", 1);
    assert.equal((await b.getVariable("x")).createdBy, "bob");
    const a = new ToolBridgeClient(host.target, { token: alice });
    await assert.rejects(a.initializeSession("bobs-session"), fails(ErrorType.SessionNotFound));
    for (const client of [a, b, again]) client.close();
  });
});

describe("a session's id after a host restart", () => {
  it("with the memory store: a squatter's session is not the original client's to continue", async () => {
    const first = await startHost({ "auth-tokens-file": tokensFile });
    const a = new ToolBridgeClient(first.target, { token: alice });
    await a.initializeSession("restart-memory");
    a.close();
    await first.stop();

    const second = await startHost({ "auth-tokens-file": tokensFile });
    const squatter = new ToolBridgeClient(second.target, { token: bob });
    assert.equal((await squatter.initializeSession("restart-memory")).created, true);
    await squatter.setVariable("bait", "from bob");
    const retry = new ToolBridgeClient(second.target, { token: alice });
    await assert.rejects(retry.initializeSession("restart-memory"), fails(ErrorType.SessionNotFound));
    squatter.close();
    retry.close();
    await second.stop();
  });

  describe("with the Redis store", () => {
    let redis: RedisServer;

    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await redis.stop();
    });

    it("keeps the owner: B cannot take A's id, A continues where it was", async () => {
      const flags = { "auth-tokens-file": tokensFile, store: redis.url };
      const first = await startHost(flags);
      const a = new ToolBridgeClient(first.target, { token: alice });
      await a.initializeSession("restart-redis");
      await a.setVariable("plan", ["kept"]);
      a.close();
      await first.stop();

      const second = await startHost(flags);
      const b = new ToolBridgeClient(second.target, { token: bob });
      await assert.rejects(b.initializeSession("restart-redis"), fails(ErrorType.SessionNotFound));
      const messages = await everyRpc(aimAt(b, "restart-redis"));
      for (const [rpc, message] of Object.entries(messages)) assert.match(message, /^SessionNotFound: /, rpc);
      const again = new ToolBridgeClient(second.target, { token: alice });
      assert.equal((await again.initializeSession("restart-redis")).created, false);
      assert.deepEqual((await again.getVariable("plan")).value, ["kept"]);
      assert.equal((await again.sessionInfo()).owner, "alice");
      b.close();
      again.close();
      await second.stop();
    });
  });
});
