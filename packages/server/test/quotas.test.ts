// Quotas and budgets against the real host CLI over loopback: each limit is hit, answered
// with the documented error naming it (details.quota), and a refused write commits
// nothing. Constraint patterns are matched in linear time: the catastrophic pattern of
// backtracking engines is harmless, and constructs that need backtracking are refused.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BridgeError, ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import { newToken, writeTokens } from "./support/credentials.js";
import { type HostProcess, startHost } from "./support/host-process.js";
import { type RedisServer, startRedis } from "./support/redis-server.js";
import { waitUntil } from "./support/wait.js";

const alice = newToken();
const bob = newToken();
let dir: string;
let tokensFile: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "toolbridge-quotas-"));
  tokensFile = writeTokens(dir, { [alice]: "alice", [bob]: "bob" });
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const quota = (type: string, name: string) => fails(type, (e: BridgeError) => e.details.quota === name);

async function session(target: string, token: string, id = ""): Promise<ToolBridgeClient> {
  const client = new ToolBridgeClient(target, { token });
  await client.initializeSession(id);
  return client;
}

describe("quotas", () => {
  let host: HostProcess;

  before(async () => {
    host = await startHost({
      "auth-tokens-file": tokensFile,
      "max-sessions-per-principal": 2,
      "max-session-metadata-bytes": 100,
      "max-tags-per-variable": 100,
      "max-tag-bytes": 300,
      "max-session-variable-bytes": 10_000,
      "max-message-bytes": 8192,
      "max-variable-bytes": 4096,
      "max-streams-per-session": 2,
      "max-streams-per-principal": 3,
    });
  });
  after(async () => {
    await host.stop();
  });

  it("sessions per principal: a third is refused, another principal is not, a freed slot is reused", async () => {
    const [one, two] = [await session(host.target, alice), await session(host.target, alice)];
    const third = new ToolBridgeClient(host.target, { token: alice });
    await assert.rejects(
      third.initializeSession(),
      quota(ErrorType.SessionLimitExceeded, "maxSessionsPerPrincipal"),
    );
    // Attaching to a session one already owns is no new session.
    assert.equal((await third.initializeSession(one.sessionId)).created, false);
    const bobs = await session(host.target, bob);
    await one.cleanup();
    const again = await session(host.target, alice);
    for (const client of [one, two, third, bobs, again]) {
      await client.cleanup();
      client.close();
    }
  });

  it("session metadata: too large is refused and no session is created", async () => {
    const client = new ToolBridgeClient(host.target, { token: bob });
    await assert.rejects(
      client.initializeSession("big-metadata", { note: "x".repeat(200) }),
      quota(ErrorType.ResourceExhausted, "maxSessionMetadataBytes"),
    );
    assert.equal((await client.initializeSession("big-metadata", { note: "short" })).created, true);
    await client.cleanup();
    client.close();
  });

  it("tags: size per tag, and no write commits whose reply could not be sent", async () => {
    const client = await session(host.target, alice);
    await assert.rejects(
      client.setVariable("v", 1, { tags: { big: "x".repeat(400) } }),
      quota(ErrorType.ResourceExhausted, "maxTagBytes"),
    );
    await assert.rejects(client.getVariable("v"), fails(ErrorType.VariableNotFound));
    // Tags merge over writes; 10 tags of ~250 bytes per write reach the 8 KiB message limit
    // within a few writes. The write that would cross it is refused whole.
    let version = 0;
    let refused: unknown;
    for (let write = 0; write < 10 && refused === undefined; write++) {
      const tags = Object.fromEntries(
        Array.from({ length: 10 }, (_, i) => [`w${write}-t${i}`, "y".repeat(240)]),
      );
      try {
        version = (await client.setVariable("v", write, { tags })).version;
      } catch (error) {
        refused = error;
      }
    }
    assert.ok(refused !== undefined, "a write crossed the message limit");
    assert.doesNotThrow(() => quota(ErrorType.ResourceExhausted, "maxMessageBytes")(refused));
    const kept = await client.getVariable("v");
    assert.equal(kept.version, version, "the refused write committed nothing");
    assert.equal(kept.value, version - 1);
    await client.cleanup();
    client.close();
  });

  it("tags: the total per variable", async () => {
    const other = await startHost({ "max-tags-per-variable": 3 });
    const client = new ToolBridgeClient(other.target);
    await client.initializeSession();
    await client.setVariable("v", 1, { tags: { a: "1", b: "2" } });
    await client.setVariable("v", 2, { tags: { a: "changed" } });
    await assert.rejects(
      client.setVariable("v", 3, { tags: { c: "3", d: "4" } }),
      quota(ErrorType.ResourceExhausted, "maxTagsPerVariable"),
    );
    const kept = await client.getVariable("v");
    assert.deepEqual([kept.value, kept.version, kept.tags], [2, 2, { a: "changed", b: "2" }]);
    client.close();
    await other.stop();
  });

  it("bytes of a session's variables: a write over the budget commits nothing; shrinking and deleting free it", async () => {
    const client = await session(host.target, bob);
    for (const name of ["a", "b", "c"]) await client.setVariable(name, name.repeat(3000));
    await assert.rejects(
      client.setVariable("d", "d".repeat(3000)),
      quota(ErrorType.ResourceExhausted, "maxSessionVariableBytes"),
    );
    await assert.rejects(client.getVariable("d"), fails(ErrorType.VariableNotFound));
    await client.setVariable("a", "small");
    await client.setVariable("d", "d".repeat(3000));
    await assert.rejects(
      client.setVariable("e", "e".repeat(3000)),
      quota(ErrorType.ResourceExhausted, "maxSessionVariableBytes"),
    );
    await client.deleteVariable("b");
    await client.setVariable("e", "e".repeat(3000));
    await client.cleanup();
    client.close();
  });

  it("streams per session and per principal: watches and tool streams count, a closed one frees its place", async () => {
    const client = await session(host.target, alice);
    const first = client.watchVariables(["x"]);
    const second = client.watchVariables(["y"]);
    await Promise.all([first.ready(), second.ready()]);
    const third = client.watchVariables(["z"]);
    await assert.rejects(third.ready(), quota(ErrorType.ResourceExhausted, "maxStreamsPerSession"));
    const stream = async () => {
      for await (const _ of client.streamTool("count", { n: 1 })) return;
    };
    await assert.rejects(stream(), quota(ErrorType.ResourceExhausted, "maxStreamsPerSession"));
    first.close();
    await untilAccepted(() => client.watchVariables(["z"]));

    // Per principal: alice has two streams open; her second session may hold one more, not two.
    const elsewhere = await session(host.target, alice);
    await elsewhere.watchVariables(["x"]).ready();
    const fourth = elsewhere.watchVariables(["y"]);
    await assert.rejects(fourth.ready(), quota(ErrorType.ResourceExhausted, "maxStreamsPerPrincipal"));
    // Bob is not counted with alice.
    const bobs = await session(host.target, bob);
    const bobWatch = bobs.watchVariables(["x"]);
    await bobWatch.ready();
    for (const c of [client, elsewhere, bobs]) {
      await c.cleanup();
      c.close();
    }
  });
});

/** Opens watches until one is accepted (a closed watch is counted off when its stream ends); keeps it open. */
async function untilAccepted(open: () => { ready(): Promise<void> }): Promise<void> {
  const accepted = () =>
    open()
      .ready()
      .then(
        () => true,
        () => false,
      );
  await waitUntil(accepted, "the closed watch's place is freed", { tries: 100 });
}

describe("bytes of all variables in the memory store", () => {
  it("a write that would take the host over maxTotalVariableBytes is refused", async () => {
    const host = await startHost({ "max-total-variable-bytes": 5000 });
    const a = new ToolBridgeClient(host.target);
    await a.initializeSession();
    const b = new ToolBridgeClient(host.target);
    await b.initializeSession();
    await a.setVariable("x", "a".repeat(3000));
    await assert.rejects(
      b.setVariable("x", "b".repeat(3000)),
      quota(ErrorType.ResourceExhausted, "maxTotalVariableBytes"),
    );
    await a.cleanup();
    await b.setVariable("x", "b".repeat(3000));
    a.close();
    b.close();
    await host.stop();
  });
});

describe("sessions per principal across nodes (Redis store)", () => {
  let redis: RedisServer;

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it("counts a principal's sessions on every host sharing the store", async () => {
    const flags = { "auth-tokens-file": tokensFile, store: redis.url, "max-sessions-per-principal": 2 };
    const [one, two] = [await startHost(flags), await startHost(flags)];
    const first = await session(one.target, alice);
    const second = await session(two.target, alice);
    for (const target of [one.target, two.target]) {
      const third = new ToolBridgeClient(target, { token: alice });
      await assert.rejects(
        third.initializeSession(),
        quota(ErrorType.SessionLimitExceeded, "maxSessionsPerPrincipal"),
      );
      third.close();
    }
    // Another principal's attempt on alice's id neither succeeds nor counts against bob.
    const bobs = new ToolBridgeClient(two.target, { token: bob });
    await assert.rejects(bobs.initializeSession(first.sessionId), fails(ErrorType.SessionNotFound));
    await bobs.initializeSession();
    await bobs.initializeSession();
    await second.cleanup();
    const replacement = await session(one.target, alice);
    for (const client of [first, replacement, bobs]) client.close();
    second.close();
    await one.stop();
    await two.stop();
  });
});

describe("constraint patterns and values per request, at the defaults", () => {
  let host: HostProcess;
  let client: ToolBridgeClient;

  before(async () => {
    host = await startHost();
    client = new ToolBridgeClient(host.target);
    await client.initializeSession();
  });
  after(async () => {
    client.close();
    await host.stop();
  });

  it("matches the catastrophic pattern in linear time while another client's calls keep flowing", async () => {
    await client.declareVariable("word", "string", "aaa", { constraints: { pattern: "^(a+)+$" } });
    const other = new ToolBridgeClient(host.target);
    await other.initializeSession();
    // A backtracking engine takes seconds for 28 a's and doubles per character; these are 10,000.
    const writes = Array.from({ length: 5 }, (_, i) =>
      client.setVariable("word", `${"a".repeat(10_000 + i)}!`).then(
        () => "accepted",
        (error: BridgeError) => error.type,
      ),
    );
    const calls = Array.from({ length: 20 }, (_, i) => other.executeTool("add", { a: i, b: 1 }));
    assert.deepEqual(
      await Promise.all(calls),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(await Promise.all(writes), Array(5).fill(ErrorType.ConstraintViolation));
    await client.setVariable("word", "a".repeat(28));
    assert.equal((await client.getVariable("word")).value, "a".repeat(28));
    other.close();
  });

  it("refuses patterns that need backtracking when they are declared, naming the construct", async () => {
    for (const [pattern, named] of [
      ["(a)\\1", /backreferences/],
      ["x(?=y)", /lookahead/],
      ["(?<!x)y", /lookbehind/],
    ] as const) {
      await assert.rejects(
        client.declareVariable(`p${pattern.length}`, "string", "y", { constraints: { pattern } }),
        fails(ErrorType.ValidationError, (e) => named.test(e.message) && /linear time/.test(e.message)),
      );
    }
    await client.declareVariable("email", "string", "a@b.co", {
      constraints: { pattern: "^[\\w.+-]+@[\\w-]+(\\.[\\w-]+)+$" },
    });
    await assert.rejects(client.setVariable("email", "not an address"), fails(ErrorType.ConstraintViolation));
  });

  const entries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
  const overBudget = fails(
    ErrorType.CommunicationError,
    (e) => e.grpcCode === 8 && /maxValueNodes/.test(e.message) && /10000 values/.test(e.message),
  );

  it("refuses a legal 10 MiB request of 600,000 map entries before decoding it, and keeps serving", async () => {
    const big = entries(600_000);
    await assert.rejects(client.executeTool("echo", { value: big }), overBudget);
    await assert.rejects(client.setVariable("big", big), overBudget);
    await assert.rejects(client.getVariable("big"), fails(ErrorType.VariableNotFound));
    assert.equal(await client.executeTool("add", { a: 1, b: 2 }), 3);
  });

  it("takes a request at the bound, and counts the values of every item of a batch", async () => {
    // The map is one node, its 9,999 entries one each: 10,000.
    const largest = entries(9_999);
    assert.deepEqual(await client.executeTool("echo", { value: largest }), largest);
    await assert.rejects(client.executeTool("echo", { value: entries(10_000) }), overBudget);
    const half = entries(6_000);
    await assert.rejects(
      client.executeBatch([
        { toolId: "echo", kwargs: { value: half } },
        { toolId: "echo", kwargs: { value: half } },
      ]),
      overBudget,
    );
  });
});
