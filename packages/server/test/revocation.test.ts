// Credentials revoked while streams are open. A host authenticating with the application's
// hook checks every open stream again on host.revalidate(): the streams of a principal the
// hook no longer accepts (StreamTool, variable watch, health watch, reflection) end with
// UNAUTHENTICATED, their tools aborted, while another principal's streams go on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ToolBridgeClient, type VariableUpdate } from "@toolbridge/client";
import { ToolBridgeHost } from "@toolbridge/server";
import { pino } from "pino";
import registerTestTools from "../../../testdata/tools/test-tools.js";
import { type HealthCheckResponse, HealthClient } from "../src/gen/grpc/health/v1/health.js";
import { ServerReflectionClient } from "../src/gen/grpc/reflection/v1/reflection.js";
import { newToken } from "./support/credentials.js";

/** The hook's answer: the principal of each token it accepts now. */
const accepted = new Map<string, string>();
const [bobToken, carolToken, daveToken] = [newToken(), newToken(), newToken()];
let host: ToolBridgeHost;
let target: string;

before(async () => {
  host = new ToolBridgeHost({
    host: "127.0.0.1",
    port: 0,
    healthRequiresAuth: true,
    logger: pino({ level: "silent" }),
  });
  registerTestTools(host);
  host.authenticate(({ token }) => (token === undefined ? undefined : accepted.get(token)));
  ({ target } = await host.start());
});
after(() => host.stop({ graceMs: 0 }));

function withToken(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/** A principal's open streams, each of them past its first message. */
interface OpenStreams {
  readonly client: ToolBridgeClient;
  /** A StreamTool call of `count`, running until cancelled. */
  readonly chunks: AsyncIterator<unknown>;
  /** A watch of the variable "plan". */
  readonly updates: AsyncIterator<VariableUpdate>;
  /** A health watch and a reflection stream: each rejects with the status it ends with. */
  readonly health: Promise<never>;
  readonly reflection: Promise<never>;
  readonly close: () => void;
}

/** Opens a StreamTool call (a long `count` tagged `tag`), a variable watch, a health watch and a reflection stream. */
async function openStreams(token: string, tag: string): Promise<OpenStreams> {
  const client = new ToolBridgeClient(target, { token });
  await client.initializeSession();
  const chunks = client.streamTool("count", { n: 1_000_000, delay_ms: 20, tag })[Symbol.asyncIterator]();
  await chunks.next();
  const watch = client.watchVariables(["plan"]);
  await watch.ready();
  const health = new HealthClient(target, grpc.credentials.createInsecure());
  const healthWatch = health.watch({ service: "" }, withToken(token));
  await new Promise<HealthCheckResponse>((resolve) => healthWatch.once("data", resolve));
  const reflection = new ServerReflectionClient(target, grpc.credentials.createInsecure());
  const reflecting = reflection.serverReflectionInfo(withToken(token));
  reflecting.write({ host: "", messageRequest: { $case: "listServices", value: "" } });
  await new Promise((resolve) => reflecting.once("data", resolve));
  const statusOf = (call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>) => {
    const status = new Promise<never>((_, reject) => call.on("error", reject));
    status.catch(() => {});
    return status;
  };
  return {
    client,
    chunks,
    updates: watch[Symbol.asyncIterator](),
    health: statusOf(healthWatch),
    reflection: statusOf(reflecting),
    close: () => {
      healthWatch.cancel();
      reflecting.cancel();
      health.close();
      reflection.close();
      client.close();
    },
  };
}

/** Reads an iterator until it fails; resolves never (it rejects with the failure). */
async function failureOf(iterator: AsyncIterator<unknown>): Promise<never> {
  for (let i = 0; i < 1_000_000; i++) {
    if ((await iterator.next()).done === true) break;
  }
  return assert.fail("the stream ended without an error");
}

function revokedBy(reason: RegExp) {
  return (error: unknown) => {
    const code = error instanceof BridgeError ? error.grpcCode : (error as grpc.ServiceError).code;
    assert.equal(code, grpc.status.UNAUTHENTICATED, String(error));
    assert.match((error as Error).message, reason);
    return true;
  };
}

/** Waits for all four streams to end, and checks that each was revoked (`reason` in its message). */
async function allRevoked(streams: OpenStreams, reason: RegExp): Promise<void> {
  const ends = await Promise.allSettled([
    failureOf(streams.chunks),
    failureOf(streams.updates),
    streams.health,
    streams.reflection,
  ]);
  for (const end of ends) {
    assert.equal(end.status, "rejected");
    revokedBy(reason)(end.reason);
  }
}

describe("host.revalidate() with the application's authentication hook", () => {
  it("ends the open streams of a principal the hook no longer accepts, and only those", async () => {
    accepted.set(bobToken, "bob");
    accepted.set(carolToken, "carol");
    const bob = await openStreams(bobToken, "revoked-bob");
    const carol = await openStreams(carolToken, "kept-carol");
    try {
      accepted.delete(bobToken);
      assert.equal(await host.revalidate(), 4, "bob's four streams are revoked");
      await allRevoked(bob, /no longer accepted \(re-checked by the application\)/);
      const events = (await carol.client.executeTool("events", { tag: "revoked-bob" })) as {
        event: string;
      }[];
      assert.ok(
        events.some((e) => e.event === "aborted"),
        `bob's stream tool was aborted: ${JSON.stringify(events)}`,
      );
      await assert.rejects(bob.client.executeTool("add", { a: 1, b: 2 }), revokedBy(/not valid|requires/));
      // Carol's streams were checked too and go on.
      assert.equal((await carol.chunks.next()).done, false);
      await carol.client.setVariable("plan", ["carol"]);
      const update = (await carol.updates.next()).value;
      assert.ok(update?.kind === "set", JSON.stringify(update));
      assert.deepEqual(update.variable.value, ["carol"]);
    } finally {
      bob.close();
      carol.close();
    }
  });

  it("ends the open streams whose credentials now name another principal", async () => {
    accepted.set(daveToken, "dave");
    const dave = await openStreams(daveToken, "renamed-dave");
    try {
      accepted.set(daveToken, "mallory");
      assert.equal(await host.revalidate(), 4);
      await allRevoked(dave, /another principal than 'dave'/);
    } finally {
      dave.close();
    }
  });
});
