// The operations RPCs (ListSessions, ListRecentCalls, GetToolStats, DescribeHost) and the
// operator role, over gRPC against the real host CLI with a tokens file: each principal
// sees its own sessions and calls, an operator sees every session (and may use it), paging
// holds, each call is listed with what it came over (gRPC or MCP), and a role taken away in
// the tokens file ends the streams it had opened.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { decodeValue, encodeValue, pb } from "@toolbridge/core";
import { parseTokens } from "../src/auth/tokens.js";
import { newToken } from "./support/credentials.js";
import { type HostProcess, startHost } from "./support/host-process.js";

const TOKENS = { alice: newToken(), bob: newToken(), ops: newToken() };
type Who = keyof typeof TOKENS;

let host: HostProcess;
let dir = "";
let tokensFile = "";
let stub: pb.ToolBridgeClient;
const clients: ToolBridgeClient[] = [];

function writeTokensFile(operators: string[]): void {
  const lines = [`${TOKENS.alice} alice`, `${TOKENS.bob} bob`, `${TOKENS.ops} ops`];
  writeFileSync(tokensFile, `${[...lines, ...operators.map((name) => `operator ${name}`)].join("\n")}\n`);
}

function as(who: Who): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${TOKENS[who]}`);
  return metadata;
}

/** A unary RPC of the raw stub, as `who`: `invoke` makes the call with the metadata and callback given. */
function rpc<Res>(
  who: Who,
  invoke: (
    metadata: grpc.Metadata,
    callback: (error: grpc.ServiceError | null, response: Res) => void,
  ) => unknown,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) =>
    invoke(as(who), (error, response) => (error === null ? resolve(response) : reject(error))),
  );
}

async function sessionsOf(
  who: Who,
  request: Partial<pb.ListSessionsRequest> = {},
): Promise<pb.ListSessionsResponse> {
  return rpc<pb.ListSessionsResponse>(who, (metadata, callback) =>
    stub.listSessions({ pageSize: 0, pageToken: "", owner: "", ...request }, metadata, callback),
  );
}

async function open(who: Who, sessionId: string): Promise<ToolBridgeClient> {
  const client = new ToolBridgeClient(host.target, { token: TOKENS[who] });
  clients.push(client);
  await client.initializeSession(sessionId);
  return client;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toolbridge-operations-"));
  tokensFile = join(dir, "tokens");
  writeTokensFile(["ops"]);
  host = await startHost({ "auth-tokens-file": tokensFile, "mcp-port": 0 });
  stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
});

after(async () => {
  stub.close();
  for (const client of clients) client.close();
  await host.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the operator role in the tokens file", () => {
  it("reads files written before roles existed as they were, and `operator <principal>` lines", () => {
    const table = parseTokens(
      `# tokens\n${TOKENS.alice} operator\n${TOKENS.ops} ops team\noperator ops team\n`,
      "t",
    );
    assert.equal(table.principalOf(TOKENS.alice), "operator", "a principal may still be named operator");
    assert.equal(table.principalOf(TOKENS.ops), "ops team");
    assert.deepEqual([...table.operators], ["ops team"]);
    assert.throws(() => parseTokens("operator @host\n", "t"), /reserved/);
    assert.throws(
      () => parseTokens("operator\n", "t"),
      /is not '<token> <principal>' or 'operator <principal>'/,
    );
  });
});

describe("operations RPCs over gRPC", () => {
  it("lists each principal's own sessions, and every session to an operator, page by page", async () => {
    for (let i = 0; i < 5; i++) await open("alice", `ops-alice-${i}`);
    await open("bob", "ops-bob-0");
    const alice = await sessionsOf("alice");
    assert.deepEqual(
      alice.sessions.map((s) => [s.sessionId, s.owner]),
      [0, 1, 2, 3, 4].map((i) => [`ops-alice-${i}`, "alice"]),
    );
    assert.ok(alice.sessions.every((s) => s.expiresAt !== undefined && s.createdAt !== undefined));
    assert.deepEqual(
      (await sessionsOf("bob")).sessions.map((s) => s.sessionId),
      ["ops-bob-0"],
    );
    assert.deepEqual(
      (await sessionsOf("bob", { owner: "alice" })).sessions,
      [],
      "bob cannot ask for alice's",
    );

    const first = await sessionsOf("ops", { pageSize: 4 });
    assert.equal(first.nextPageToken, "ops-alice-3");
    const second = await sessionsOf("ops", { pageSize: 4, pageToken: first.nextPageToken });
    assert.deepEqual(
      second.sessions.map((s) => s.sessionId),
      ["ops-alice-4", "ops-bob-0"],
    );
    assert.equal(second.nextPageToken, "");
    assert.deepEqual(
      (await sessionsOf("ops", { owner: "bob" })).sessions.map((s) => s.sessionId),
      ["ops-bob-0"],
    );
    const tooMany = await sessionsOf("ops", { pageSize: 1001 });
    assert.equal(tooMany.success, false);
    assert.equal(tooMany.error?.type, ErrorType.ValidationError);
  });

  it("lets an operator use another principal's session, and no one else", async () => {
    const alice = await open("alice", "ops-shared");
    await alice.setVariable("note", "from alice");
    const read = (who: Who) =>
      rpc<pb.VariableResponse>(who, (metadata, callback) =>
        stub.getSessionVariable(
          {
            sessionId: "ops-shared",
            variableName: "note",
            includeMetadata: true,
          },
          metadata,
          callback,
        ),
      );
    assert.deepEqual(decodeValue((await read("ops")).value), "from alice");
    const written = await rpc<pb.SetVariableResponse>("ops", (metadata, callback) =>
      stub.setSessionVariable(
        {
          sessionId: "ops-shared",
          variableName: "note",
          value: encodeValue("from ops"),
          metadata: undefined,
          createIfMissing: true,
        },
        metadata,
        callback,
      ),
    );
    assert.equal(written.success, true, written.error?.message);
    assert.equal(
      (await alice.getVariable("note")).updatedBy,
      "ops",
      "the operator's write is recorded as its own",
    );
    assert.equal((await read("bob")).error?.type, ErrorType.SessionNotFound);
  });

  it("shows each principal the calls made in its sessions, an operator all of them", async () => {
    const alice = await open("alice", "ops-calls-alice");
    const bob = await open("bob", "ops-calls-bob");
    await alice.executeTool("add", { a: 1, b: 2 });
    await bob.executeTool("fail", { message: "bob's failure" }).catch(() => undefined);
    const calls = async (who: Who) =>
      (
        await rpc<pb.ListRecentCallsResponse>(who, (metadata, callback) =>
          stub.listRecentCalls({ afterSequence: 0n, sessionId: "", limit: 0 }, metadata, callback),
        )
      ).calls;
    const seenByAlice = await calls("alice");
    assert.ok(
      seenByAlice.some(
        (c) => c.tool === "add" && c.sessionId === "ops-calls-alice" && c.principal === "alice",
      ),
    );
    assert.ok(
      seenByAlice.every((c) => c.principal === "alice"),
      "none of bob's calls",
    );
    const failure = (await calls("bob")).find((c) => c.tool === "fail");
    assert.equal(failure?.errorType, ErrorType.ToolExecutionError);
    assert.match(failure?.errorMessage ?? "", /bob's failure/);
    const seenByOps = await calls("ops");
    assert.ok(seenByOps.some((c) => c.principal === "alice") && seenByOps.some((c) => c.principal === "bob"));
    const last = seenByOps.at(-1)?.sequence ?? 0n;
    const newer = await rpc<pb.ListRecentCallsResponse>("ops", (metadata, callback) =>
      stub.listRecentCalls({ afterSequence: last, sessionId: "", limit: 0 }, metadata, callback),
    );
    assert.deepEqual(newer.calls, [], "nothing after the newest");
    assert.equal(newer.lastSequence, last);

    const stats = await rpc<pb.GetToolStatsResponse>("bob", (metadata, callback) =>
      stub.getToolStats({}, metadata, callback),
    );
    const add = stats.tools.find((tool) => tool.tool === "add");
    assert.ok(
      add !== undefined && add.calls.reduce((a, b) => a + b, 0) >= 1,
      "host-wide: bob sees add's count",
    );
    assert.equal(stats.intervalMs, 1000);
  });

  it("lists each call with what it came over: gRPC, or MCP for an MCP client's call", async () => {
    const alice = await open("alice", "ops-protocols");
    await alice.executeTool("add", { a: 2, b: 3 });
    const url = /toolbridge mcp on (\S+)/.exec(host.stdout())?.[1];
    assert.ok(url, `no MCP URL in the host's output:\n${host.stdout()}`);
    const mcp = new Client({ name: "operations-test", version: "1.0.0" });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(url), { authProvider: { token: async () => TOKENS.alice } }),
    );
    try {
      const sum = await mcp.callTool({ name: "add", arguments: { a: 20, b: 22 } });
      assert.notEqual(sum.isError, true, JSON.stringify(sum));
    } finally {
      await mcp.close();
    }
    const calls = (
      await rpc<pb.ListRecentCallsResponse>("alice", (metadata, callback) =>
        stub.listRecentCalls({ afterSequence: 0n, sessionId: "", limit: 0 }, metadata, callback),
      )
    ).calls.filter((call) => call.tool === "add");
    const overGrpc = calls.find((call) => call.sessionId === "ops-protocols");
    const overMcp = calls.find((call) => call.protocol === "mcp");
    assert.equal(overGrpc?.protocol, "grpc");
    assert.equal(overMcp?.principal, "alice");
    assert.equal(overMcp?.errorType, "");
  });

  it("describes the host and who is asking", async () => {
    const described = await rpc<pb.DescribeHostResponse>("ops", (metadata, callback) =>
      stub.describeHost({}, metadata, callback),
    );
    assert.equal(described.principal, "ops");
    assert.equal(described.operator, true);
    assert.equal(described.authentication, true);
    assert.equal(described.store, "memory");
    assert.ok(described.health.some((h) => h.service === "" && h.serving));
    const bob = await rpc<pb.DescribeHostResponse>("bob", (metadata, callback) =>
      stub.describeHost({}, metadata, callback),
    );
    assert.deepEqual([bob.principal, bob.operator], ["bob", false]);
  });

  it("ends an operator's stream on another's session once the tokens file takes the role away", async () => {
    await open("alice", "ops-revoked");
    const watch = stub.watchSessionVariables(
      { sessionId: "ops-revoked", variableNames: [], includeInitialValues: false },
      as("ops"),
    );
    const ended = new Promise<grpc.StatusObject>((resolve) => watch.on("error", resolve));
    await new Promise<void>((resolve) => watch.once("data", () => resolve()));
    writeTokensFile([]);
    host.process.kill("SIGHUP");
    const status = await ended;
    assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    assert.match(status.details, /'ops' no longer has the operator role/);
    assert.equal(
      (
        await rpc<pb.DescribeHostResponse>("ops", (metadata, callback) =>
          stub.describeHost({}, metadata, callback),
        )
      ).operator,
      false,
    );
  });
});
