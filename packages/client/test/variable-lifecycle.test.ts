// Session variables and the session they live in: cleanup, expiry and shutdown as the TS
// client sees them, against the real host CLI on loopback.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ErrorType } from "@toolbridge/client";
import { pb } from "@toolbridge/core";
import { fails } from "../../server/test/support/assertions.js";
import { type HostProcess, startHost } from "../../server/test/support/host-process.js";
import { connect, take } from "./support/variables.js";

describe("variables and the session lifecycle", () => {
  let host: HostProcess;

  before(async () => {
    host = await startHost({
      "session-timeout-ms": 1000,
      "sweep-interval-ms": 50,
      "shutdown-grace-ms": 10_000,
    });
  });
  after(async () => {
    await host.stop();
  });

  it("vanish on cleanup: watchers get session_ended, and the id starts empty when created again", async () => {
    const owner = await connect(host);
    const other = await connect(host, owner.sessionId);
    try {
      await owner.setVariable("doomed", [1, 2, 3]);
      const watch = other.watchVariables();
      await watch.ready();
      assert.equal((await owner.sessionInfo()).variableCount, 1);
      await owner.cleanup();
      assert.deepEqual(await take(watch, 5), [
        { kind: "session_ended", sessionId: other.sessionId, reason: "cleanup" },
      ]);
      await assert.rejects(other.getVariable("doomed"), fails(ErrorType.SessionNotFound));
      const again = await other.initializeSession(other.sessionId);
      assert.equal(again.created, true);
      assert.deepEqual(await other.listVariables(), []);
    } finally {
      owner.close();
      other.close();
    }
  });

  it("a watch starts with READY on the wire, before its initial values, and SESSION_ENDED is no error", async () => {
    const owner = await connect(host);
    const other = await connect(host, owner.sessionId);
    const stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
    const { VARIABLE_UPDATE_KIND_READY: READY, VARIABLE_UPDATE_KIND_INITIAL: INITIAL } =
      pb.VariableUpdateKind;
    const { VARIABLE_UPDATE_KIND_SET: SET, VARIABLE_UPDATE_KIND_SESSION_ENDED: ENDED } =
      pb.VariableUpdateKind;
    const summary = (m: pb.VariableUpdate) => [m.kind, m.variableName, m.error?.type ?? "", m.endReason];
    try {
      await owner.setVariable("w.a", 1);
      const sessionId = owner.sessionId ?? "";
      const call = stub.watchSessionVariables({ sessionId, variableNames: [], includeInitialValues: true });
      const messages = call[Symbol.asyncIterator]() as AsyncIterator<pb.VariableUpdate>;
      const next = async () => summary((await messages.next()).value as pb.VariableUpdate);
      assert.deepEqual(await next(), [READY, "", "", ""]);
      assert.deepEqual(await next(), [INITIAL, "w.a", "", ""]);
      await owner.setVariable("w.a", 2);
      assert.deepEqual(await next(), [SET, "w.a", "", ""]);

      // The clients take READY as ready() and do not yield it.
      const watcher = owner.watchVariables([], { includeInitialValues: true });
      await watcher.ready();
      await owner.cleanup();
      assert.deepEqual(await next(), [ENDED, "", "", "cleanup"]);
      assert.equal((await messages.next()).done, true);
      assert.deepEqual(
        (await take(watcher, 5)).map((u) => u.kind),
        ["initial", "session_ended"],
      );

      // A watch that fails sends its error instead of READY.
      const failed = stub.watchSessionVariables({
        sessionId,
        variableNames: [],
        includeInitialValues: false,
      });
      const failure = failed[Symbol.asyncIterator]() as AsyncIterator<pb.VariableUpdate>;
      const first = (await failure.next()).value as pb.VariableUpdate;
      assert.deepEqual(summary(first), [
        pb.VariableUpdateKind.VARIABLE_UPDATE_KIND_UNSPECIFIED,
        "",
        "SessionNotFound",
        "",
      ]);
      assert.equal((await failure.next()).done, true);
      await assert.rejects(other.watchVariables().ready(), fails(ErrorType.SessionNotFound));
    } finally {
      owner.close();
      other.close();
      stub.close();
    }
  });

  it("vanish on expiry", async () => {
    const client = await connect(host);
    try {
      await client.setVariable("short_lived", "x");
      const watch = client.watchVariables(["short_lived"], { includeInitialValues: true });
      const updates = await take(watch, 5);
      assert.deepEqual(
        updates.map((u) => u.kind),
        ["initial", "session_ended"],
      );
      const ended = updates[1];
      assert.equal(ended?.kind === "session_ended" ? ended.reason : "", "expired");
      await assert.rejects(client.getVariable("short_lived"), fails(ErrorType.SessionNotFound));
    } finally {
      client.close();
    }
  });

  it("a watch ends with UNAVAILABLE when the host shuts down, without holding up the grace period", async () => {
    const client = await connect(host);
    try {
      const watch = client.watchVariables();
      await watch.ready();
      const ended = take(watch, 1);
      const started = performance.now();
      const stopped = host.stop();
      await assert.rejects(
        ended,
        fails(ErrorType.CommunicationError, (e) => e.grpcCode === grpc.status.UNAVAILABLE),
      );
      assert.equal(await stopped, 0);
      assert.ok(performance.now() - started < 5000, "the host stopped before its 10 s grace period ran out");
    } finally {
      client.close();
    }
  });
});
