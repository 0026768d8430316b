// The Redis store's URL forms (one Redis, a Redis Cluster, a Sentinel group) and what it
// makes of Redis's failures: only what heals by itself is retriable; a URL of the wrong form,
// a refused password, a replica or refused scripts say what to change. The key layout keeps
// every script's keys in one Cluster slot, whatever the session id.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BridgeError, ErrorType } from "@toolbridge/core";
import {
  classify,
  isConfigurationFault,
  ReplicaAckError,
  unavailable,
} from "../src/sessions/redis/faults.js";
import { keySlot, RedisKeys } from "../src/sessions/redis/keys.js";
import { checkInfo } from "../src/sessions/redis/server-check.js";
import { parseRedisTarget, redactRedisUrl } from "../src/sessions/redis/target.js";

describe("store URLs", () => {
  it("reads one Redis, a cluster's nodes, and a Sentinel group with its passwords", () => {
    assert.deepEqual(parseRedisTarget("rediss://app:p%40ss@redis.internal:6380/2"), {
      mode: "single",
      url: "rediss://app:p%40ss@redis.internal:6380/2",
      username: "app",
      password: "p@ss",
      tls: true,
    });
    assert.deepEqual(parseRedisTarget("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002"), {
      mode: "cluster",
      password: "pw",
      tls: false,
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 6379 },
        { host: "::1", port: 7002 },
      ],
    });
    assert.deepEqual(
      parseRedisTarget(
        "redis+sentinel://:data@s1:26379,s2/main/3?sentinelUsername=watch&sentinelPassword=s%26cret",
      ),
      {
        mode: "sentinel",
        password: "data",
        tls: false,
        sentinels: [
          { host: "s1", port: 26379 },
          { host: "s2", port: 26379 },
        ],
        group: "main",
        db: 3,
        sentinelUsername: "watch",
        sentinelPassword: "s&cret",
      },
    );
  });

  it("refuses what it cannot read, naming the forms", () => {
    for (const url of [
      "http://h:1",
      "redis://a:1,b:2/0",
      "redis+cluster://h:1/3",
      "redis+sentinel://h:1",
      "redis+sentinel://h:1/g/x",
      "redis+sentinel://h:1/g?password=x",
      "redis+cluster://h:99999",
    ]) {
      assert.throws(
        () => parseRedisTarget(url),
        (error: unknown) =>
          error instanceof BridgeError &&
          error.type === ErrorType.ValidationError &&
          error.details.field === "store" &&
          /redis\+cluster:\/\/host:port,host:port/.test(error.message),
        url,
      );
    }
  });

  it("shows a URL without its passwords", () => {
    assert.equal(redactRedisUrl("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
    assert.equal(redactRedisUrl("redis+cluster://:secret@a:1,b:2"), "redis+cluster://:***@a:1,b:2");
    assert.equal(
      redactRedisUrl("redis+sentinel://:secret@a:1/g?sentinelUsername=w&sentinelPassword=other"),
      "redis+sentinel://:***@a:1/g?sentinelUsername=w&sentinelPassword=***",
    );
  });
});

describe("what a failure of Redis means", () => {
  const single = { mode: "single", where: "redis://127.0.0.1:17000/0" } as const;
  const cluster = { mode: "cluster", where: "redis+cluster://127.0.0.1:17000" } as const;
  const sentinel = { mode: "sentinel", where: "redis+sentinel://127.0.0.1:26379/main" } as const;
  const reply = (message: string) => Object.assign(new Error(message), { name: "ReplyError" });

  it("a MOVED to a client that cannot follow it is a configuration fault naming redis+cluster://", () => {
    const moved = classify(reply("MOVED 9148 127.0.0.1:17001"), single);
    assert.equal(moved.fault, "cluster_node");
    assert.match(moved.advice, /^use redis\+cluster:\/\/127\.0\.0\.1:17000 /);
    const error = unavailable(moved, single, reply("MOVED 9148 127.0.0.1:17001"));
    assert.equal(error.type, ErrorType.Unavailable);
    assert.deepEqual([error.details.retriable, error.details.fault], ["false", "cluster_node"]);
    assert.doesNotMatch(error.message, /retry/);
    // On a cluster, a slot that moved is a reconfiguration in progress.
    assert.equal(classify(reply("MOVED 9148 127.0.0.1:17001"), cluster).fault, "cluster_down");
  });

  it("a refused password is a configuration fault, also when commands only see the connection closed", () => {
    const refused = reply("WRONGPASS invalid username-password pair or user is disabled.");
    assert.equal(classify(refused, single).fault, "auth");
    assert.equal(classify(new Error("Connection is closed."), single, refused).fault, "auth");
    assert.equal(classify(new Error("Connection is closed."), single).fault, "unreachable");
    const sentinelRefused = new Error(
      "All sentinels are unreachable. Retrying from scratch after 100ms. Last error: WRONGPASS invalid username-password pair",
    );
    assert.match(classify(sentinelRefused, sentinel).advice, /sentinelPassword/);
  });

  it("READONLY: a replica behind redis://, a failover in progress behind redis+sentinel://", () => {
    const readOnly = reply("READONLY You can't write against a read only replica.");
    assert.equal(classify(readOnly, single).fault, "read_only_replica");
    assert.equal(classify(readOnly, sentinel).fault, "failover");
  });

  it("only what heals by itself is retriable", () => {
    const cases: [Error, string][] = [
      [reply("LOADING Redis is loading the dataset in memory"), "loading"],
      [reply("CLUSTERDOWN The cluster is down"), "cluster_down"],
      [reply("TRYAGAIN Multiple keys request during rehashing of slot"), "cluster_down"],
      [
        new Error("Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down"),
        "cluster_down",
      ],
      [reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), "failover"],
      [new Error("Command timed out"), "timeout"],
      [new Error("connect ECONNREFUSED 127.0.0.1:6379"), "unreachable"],
      [reply("OOM command not allowed when used memory > 'maxmemory'."), "error_reply"],
      [new ReplicaAckError(0, 1, 500), "replica_ack"],
    ];
    for (const [error, fault] of cases) {
      const classified = classify(error, cluster);
      assert.equal(classified.fault, fault, error.message);
      assert.equal(isConfigurationFault(classified.fault), false, error.message);
    }
    const configuration: [Error, string][] = [
      [reply("NOSCRIPT No matching script. Please use EVAL."), "scripts_refused"],
      [reply("ERR unknown command 'evalsha', with args beginning with: "), "scripts_refused"],
      [reply("NOPERM this user has no permissions to run the 'evalsha' command"), "permission"],
      [reply("ERR This instance has cluster support disabled"), "not_a_cluster"],
      [
        new Error(
          "All sentinels are unreachable. Retrying from scratch after 10ms. Last error: ERR No such master with that name",
        ),
        "unknown_master",
      ],
    ];
    for (const [error, fault] of configuration) {
      assert.equal(classify(error, sentinel).fault, fault, error.message);
      assert.ok(isConfigurationFault(fault as never), error.message);
    }
  });

  it("CROSSSLOT is a bug of the store, not a fault of Redis", () => {
    assert.throws(
      () => classify(reply("CROSSSLOT Keys in request don't hash to the same slot"), cluster),
      (error: unknown) => error instanceof BridgeError && error.type === ErrorType.InternalError,
    );
  });

  it("INFO of the Redis reached: a cluster node or a replica behind redis://, an old Redis", () => {
    assert.equal(
      checkInfo("redis_version:7.0.15\r\ncluster_enabled:1\r\n", "single", single.where)?.fault,
      "cluster_node",
    );
    assert.equal(
      checkInfo("redis_version:7.0.15\r\ncluster_enabled:1\r\n", "cluster", cluster.where),
      undefined,
    );
    const replica = "redis_version:7.0.15\r\nrole:slave\r\nmaster_host:10.0.0.9\r\nmaster_port:6380\r\n";
    assert.match(checkInfo(replica, "single", single.where)?.what ?? "", /replica \(of 10\.0\.0\.9:6380\)/);
    assert.equal(checkInfo(replica, "sentinel", sentinel.where), undefined);
    assert.equal(
      checkInfo("redis_version:6.0.16\r\nrole:master\r\n", "single", single.where)?.fault,
      "unsupported",
    );
    assert.equal(
      checkInfo("redis_version:6.2.6\r\nrole:master\r\n", "cluster", cluster.where)?.fault,
      "unsupported",
    );
    assert.equal(
      checkInfo("redis_version:7.2.4\r\nrole:master\r\ncluster_enabled:0\r\n", "single", single.where),
      undefined,
    );
  });
});

describe("the key layout on a Redis Cluster", () => {
  it("keeps every key a script takes in one slot, whatever the session id", () => {
    const keys = new RedisKeys("toolbridge:");
    // Session ids are 1-128 of letters, digits and _ . : @ - (no braces, which would move the hash tag).
    const ids = ["a", "session_3f2c", "x.y:z@w-1", "_", "0".repeat(128)];
    for (const id of ids) {
      for (const group of [
        keys.session(id),
        keys.calls(id),
        keys.tools(id),
        [keys.meta(id), keys.vars(id), keys.log(id)],
      ]) {
        assert.equal(new Set(group.map((key) => keySlot(key))).size, 1, `${id}: ${group.join(" ")}`);
      }
      assert.equal(keySlot(keys.changesChannel(id)), keySlot(keys.meta(id)), `${id}: its channel`);
    }
    for (const owner of ["alice", "{bob}", "O=acme,CN=carol"]) {
      assert.equal(keySlot(keys.owner(owner)), keySlot(keys.index), owner);
    }
  });
});
