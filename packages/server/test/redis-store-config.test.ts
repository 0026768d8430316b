// A store URL that cannot work stops the host at start (exit code 2) with a message naming
// what to change, instead of a host whose every call fails with "retry in a moment": a
// wrong or missing password (of the Redis servers or of the sentinels), a master group the
// sentinels do not know, the URL of a read-only replica, a Redis that refuses Lua scripts.
// The right URL with both passwords serves. A Redis that turns into a replica under a
// running host gets its writes refused as a configuration error, not a retriable one.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type BridgeError, ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import { type HostProcess, startHost } from "./support/host-process.js";
import { GROUP, type SentinelGroup, startSentinelGroup } from "./support/redis-sentinel.js";
import { freePort, killProcess, launchRedis, startRedis } from "./support/redis-server.js";

const run = promisify(execFile);

/** The host refuses to start: exit code 2, and stderr says `what`. */
async function refusesToStart(store: string, what: RegExp): Promise<void> {
  await assert.rejects(startHost({ store }), (error: Error) => {
    assert.match(error.message, /exited with 2/);
    assert.match(error.message, what);
    return true;
  });
}

describe("a Sentinel group with passwords on its Redis servers and its sentinels", () => {
  let group: SentinelGroup;
  const sentinels = () => group.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(",");
  before(async () => {
    group = await startSentinelGroup({
      replicas: 1,
      password: "data-secret",
      sentinelPassword: "sentinel-secret",
    });
  });
  after(async () => {
    await group?.stop();
  });

  it("serves with the URL naming both passwords, and prints it without them", async () => {
    const host = await startHost({ store: group.url });
    const client = new ToolBridgeClient(host.target);
    try {
      await client.initializeSession();
      await client.setVariable("x", 1);
      assert.equal((await client.getVariable("x")).value, 1);
      assert.match(
        host.stdout(),
        /toolbridge store: redis\+sentinel:\/\/:\*\*\*@127\.0\.0\.1:\d+,.*\?sentinelPassword=\*\*\*/,
      );
      assert.doesNotMatch(host.stdout() + host.stderr(), /secret/);
    } finally {
      client.close();
      await host.stop();
    }
  });

  it("a wrong password of the Redis servers: names the user and password of the URL", async () => {
    await refusesToStart(
      `redis+sentinel://:wrong@${sentinels()}/${GROUP}?sentinelPassword=sentinel-secret`,
      /refused the store's credentials \(WRONGPASS[^\n]*: fix the user and password in the store URL/,
    );
  });

  it("a wrong password of the sentinels: names sentinelPassword", async () => {
    await refusesToStart(
      `redis+sentinel://:data-secret@${sentinels()}/${GROUP}?sentinelPassword=wrong`,
      /refused the store's credentials[^\n]*: fix sentinelUsername and sentinelPassword/,
    );
  });

  it("a master group the sentinels do not know: says so", async () => {
    await refusesToStart(
      `redis+sentinel://:data-secret@${sentinels()}/elsewhere?sentinelPassword=sentinel-secret`,
      /has sentinels that know no master group of that name: name the group as the sentinels monitor it/,
    );
  });

  it("redis:// at the replica: names the master and the Sentinel form", async () => {
    await refusesToStart(
      `redis://:data-secret@127.0.0.1:${group.replicaPorts[0]}/0`,
      new RegExp(
        `is a read-only replica \\(of 127\\.0\\.0\\.1:${group.masterPort}\\): point the store at the master, ` +
          "or use redis\\+sentinel://",
      ),
    );
  });

  it("no password at all: names the user and password of the URL", async () => {
    await refusesToStart(
      `redis://127.0.0.1:${group.masterPort}/0`,
      /refused the store's credentials \(NOAUTH/,
    );
  });
});

describe("a Redis that refuses Lua scripts", () => {
  it("stops the host at start: every write of the store is a script", async () => {
    const port = await freePort();
    const redis = await launchRedis(port, [
      ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      ...["--rename-command", "EVAL", "", "--rename-command", "EVALSHA", ""],
    ]);
    try {
      await refusesToStart(
        `redis://127.0.0.1:${port}/0`,
        /refused the store's Lua scripts \(ERR unknown command 'eval'[^\n]*: use a Redis that runs EVAL and EVALSHA/,
      );
    } finally {
      await killProcess(redis);
    }
  });
});

describe("a Redis turned into a replica under a running host", () => {
  it("refuses writes with a configuration error, then serves again once it is a master", async () => {
    const [redis, other] = await Promise.all([startRedis(), startRedis()]);
    let host: HostProcess | undefined;
    const client = () => new ToolBridgeClient((host as HostProcess).target);
    const cli = (...args: string[]) => run("redis-cli", ["-p", String(redis.port), ...args]);
    const c = [] as ToolBridgeClient[];
    try {
      host = await startHost({ store: redis.url });
      c.push(client());
      const [first] = c as [ToolBridgeClient];
      await first.initializeSession();
      await first.setVariable("x", 1);
      await cli("replicaof", "127.0.0.1", String(other.port));
      await assert.rejects(
        first.setVariable("x", 2),
        fails(
          ErrorType.Unavailable,
          (e: BridgeError) =>
            e.details.fault === "read_only_replica" &&
            e.details.retriable === "false" &&
            /is a read-only replica; point the store at the master/.test(e.message),
        ),
      );
      await cli("replicaof", "no", "one");
      c.push(client());
      const again = c[1] as ToolBridgeClient;
      await again.initializeSession();
      await again.setVariable("x", 3);
    } finally {
      for (const each of c) each.close();
      await host?.stop();
      await Promise.all([redis.stop(), other.stop()]);
    }
  });
});
