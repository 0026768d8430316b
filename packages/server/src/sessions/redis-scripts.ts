/**
 * The Lua scripts of the Redis session store. Each one touches the keys of one session
 * only (they share the hash tag {<session id>}, so they live in one Cluster slot), or the
 * global session index only, and Redis runs a script atomically: that is what makes a
 * read-check-write of a variable a single commit.
 *
 * Keys of a session, in the order every per-session script takes them:
 *   KEYS[1] meta  hash: id, md (metadata JSON), created, last (ms), seq, floor, inc, owner,
 *                 oq ('1' when the session counts in its owner's index), bytes (of all
 *                 encoded variables), lb (of the log's entries, as `logz` counts them), rb
 *                 (of the call records: each one's value and request id)
 *   KEYS[2] vars  hash: variable name -> encoded pb.Variable
 *   KEYS[3] ver   hash: variable name -> version (decimal), compared by the commit
 *   KEYS[4] gone  sorted set: deleted name -> its last version (tombstones)
 *   KEYS[5] log   stream of changes, entry id "<sequence>-0"
 *   KEYS[6] calls hash: request id -> "r|<node>|<until ms>|<fingerprint>" (a claim) or
 *                 "d|<fingerprint>|<ToolCallResult>" (a record); the fingerprint is hex
 *   KEYS[7] callt sorted set: request id of a record -> its completion time (ms)
 *   KEYS[8] tools hash: session tool name -> "<node>|<ToolSpec>" (the node serving it)
 *   KEYS[9] logz  list: the bytes of each entry of `log`, oldest first (an encoded variable,
 *                 or a deleted name and 16), so the log can be trimmed to a byte budget
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { LEGACY_OWNER } from "./store.js";

export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
  readonly keys: number;
}

function script(keys: number, lua: string): LuaScript {
  return { lua, keys, sha: createHash("sha1").update(lua).digest("hex") };
}

/** The number of keys of a session, in the order above. */
export const SESSION_KEYS = 9;

/** PEXPIRE every key of the session; `ttl` names the Lua expression of the TTL. */
const EXPIRE_ALL = (ttl: string) => `for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ${ttl}) end`;

/**
 * Lua returning the slot fields of ARGV[1]: encoded variable (or false), floor, count,
 * incarnation, the session's bytes.
 */
const SLOT = `
local enc = redis.call('HGET', KEYS[2], ARGV[1])
local floor = '0'
if not enc then floor = redis.call('ZSCORE', KEYS[4], ARGV[1]) or redis.call('HGET', KEYS[1], 'floor') end
local slot = {enc, floor, redis.call('HLEN', KEYS[2]), redis.call('HGET', KEYS[1], 'inc'),
  redis.call('HGET', KEYS[1], 'bytes') or '0'}`;

/**
 * Creates the session or attaches to a live one (refreshing it) of the same owner, or of
 * any owner when ARGV[7] is '1'. ARGV: id, metadata JSON, now, ttl, incarnation, owner,
 * any owner, counted in the owner's index ('1'/'0'). Returns {created 0|1, md, created,
 * last, owner, oq}, or {-1} for a live session of another owner.
 */
export const CREATE = script(
  SESSION_KEYS,
  `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local r = redis.call('HMGET', KEYS[1], 'md', 'created', 'owner', 'oq')
  local owner = r[3] or '${LEGACY_OWNER}'
  if ARGV[7] ~= '1' and owner ~= ARGV[6] then return {-1} end
  redis.call('HSET', KEYS[1], 'last', ARGV[3])
  ${EXPIRE_ALL("ARGV[4]")}
  return {0, r[1], r[2], ARGV[3], owner, r[4] or '0'}
end
redis.call('DEL', unpack(KEYS, 2))
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'md', ARGV[2], 'created', ARGV[3], 'last', ARGV[3],
  'seq', 0, 'floor', 0, 'inc', ARGV[5], 'owner', ARGV[6], 'oq', ARGV[8], 'bytes', 0, 'lb', 0, 'rb', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, ARGV[2], ARGV[3], ARGV[3], ARGV[6], ARGV[8]}`,
);

/** Refreshes a live session's TTL. ARGV: now, ttl. Returns {md, created, last, owner, oq} or nil. */
export const TOUCH = script(
  SESSION_KEYS,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
${EXPIRE_ALL("ARGV[2]")}
return redis.call('HMGET', KEYS[1], 'md', 'created', 'last', 'owner', 'oq')`,
);

/**
 * Ends a session on cleanup. ARGV: ended channel, message, owner ('' for any). Returns
 * {1, owner, oq}, or {0} when it did not exist or belongs to another owner.
 */
export const END = script(
  SESSION_KEYS,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local r = redis.call('HMGET', KEYS[1], 'owner', 'oq')
local owner = r[1] or '${LEGACY_OWNER}'
if ARGV[3] ~= '' and owner ~= ARGV[3] then return {0} end
redis.call('DEL', unpack(KEYS))
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {1, owner, r[2] or '0'}`,
);

/**
 * Ends a session the index says has expired, unless a refresh kept it alive. ARGV: ended
 * channel, message. Returns {the remaining TTL (ms), owner, oq} when it lives, else {-1}.
 */
export const END_EXPIRED = script(
  SESSION_KEYS,
  `
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  local r = redis.call('HMGET', KEYS[1], 'owner', 'oq')
  return {ttl, r[1] or '${LEGACY_OWNER}', r[2] or '0'}
end
redis.call('DEL', unpack(KEYS))
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {-1}`,
);

/**
 * Counts a session in the global index (sorted set id -> expiry ms) and, when ARGV[5] > 0,
 * in its owner's index (KEYS[2], same shape, in the global index's slot), unless that
 * would exceed a limit. ARGV: id, now, expiry, max, most per owner. Returns {1}, {0, live
 * sessions} at the global limit, or {2, owned} at the owner's. A session already counted
 * is always admitted.
 */
export const RESERVE = script(
  2,
  `
local now = tonumber(ARGV[2])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then
  local live = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf')
  if live >= tonumber(ARGV[4]) then return {0, live} end
end
local perOwner = tonumber(ARGV[5])
if perOwner > 0 then
  -- Entries of sessions that ended or expired leave by their expiry time.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
    local owned = redis.call('ZCARD', KEYS[2])
    if owned >= perOwner then return {2, owned} end
  end
  redis.call('ZADD', KEYS[2], 'GT', ARGV[3], ARGV[1])
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[1])
return {1}`,
);

/** Takes up to ARGV[2] ids whose expiry (score) is at most ARGV[1] out of the index. */
export const SWEEP = script(
  1,
  `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids`,
);

/** The slot of variable ARGV[1] (the fields of SLOT above), or nil without session. */
export const READ_SLOT = script(
  SESSION_KEYS,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
${SLOT}
return slot`,
);

/**
 * Commits a variable mutation if the slot it was computed from is still current.
 * ARGV: 1 name, 2 seen version ('' when it did not exist), 3 seen floor, 4 most variables
 * the session may hold before the commit (when creating),
 * 5 kind ('s' set, 'd' delete), 6 new version, 7 encoded variable ('' for a delete),
 * 8 most tombstones, 9 changes kept in the log, 10 change channel, 11 seen incarnation,
 * 12 most bytes the session's variables may take when the write grows them ('' for no
 * check), 13 most bytes the variables and the log may take together (the log keeps what the
 * variables leave). Returns {1, sequence}, {0, current slot...} when the slot was stale or
 * the bytes would exceed ARGV[12], or nil without session. The change goes to the log and
 * the session's channel in the same step, and the session's byte count follows it; the log
 * then drops its oldest entries beyond ARGV[9] of them or its byte budget (all of them,
 * this change's too, when it alone is over it).
 */
export const COMMIT = script(
  SESSION_KEYS,
  `
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return false end
local name = ARGV[1]
local cur = redis.call('HGET', KEYS[3], name)
local stale = redis.call('HGET', KEYS[1], 'inc') ~= ARGV[11]
if stale then
elseif ARGV[2] == '' then
  if cur then
    stale = true
  else
    local floor = redis.call('ZSCORE', KEYS[4], name) or redis.call('HGET', KEYS[1], 'floor')
    stale = floor ~= ARGV[3] or redis.call('HLEN', KEYS[2]) > tonumber(ARGV[4])
  end
else
  stale = cur ~= ARGV[2]
end
local delta = (ARGV[5] == 's' and #ARGV[7] or 0) - redis.call('HSTRLEN', KEYS[2], name)
if not stale and ARGV[12] ~= '' and delta > 0 then
  stale = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0') + delta > tonumber(ARGV[12])
end
if stale then
  ${SLOT}
  return {0, slot[1], slot[2], slot[3], slot[4], slot[5]}
end
redis.call('HINCRBY', KEYS[1], 'bytes', delta)
if ARGV[5] == 's' then
  redis.call('HSET', KEYS[2], name, ARGV[7])
  redis.call('HSET', KEYS[3], name, ARGV[6])
  redis.call('ZREM', KEYS[4], name)
else
  redis.call('HDEL', KEYS[2], name)
  redis.call('HDEL', KEYS[3], name)
  redis.call('ZADD', KEYS[4], ARGV[6], name)
  if redis.call('ZCARD', KEYS[4]) > tonumber(ARGV[8]) then
    -- Forget the lowest tombstone but keep its guarantee: new names start above it.
    local oldest = redis.call('ZPOPMIN', KEYS[4])
    if tonumber(oldest[2]) > tonumber(redis.call('HGET', KEYS[1], 'floor')) then
      redis.call('HSET', KEYS[1], 'floor', oldest[2])
    end
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local lb = redis.call('HGET', KEYS[1], 'lb')
if lb then
  lb = tonumber(lb)
else
  -- A log written before its entries were counted: dropped (a resume from it is told so).
  redis.call('DEL', KEYS[5], KEYS[9])
  lb = 0
end
redis.call('XADD', KEYS[5], seq .. '-0', 'k', ARGV[5], 'n', name, 'v', ARGV[6], 'b', ARGV[7])
local size = ARGV[5] == 's' and #ARGV[7] or #name + 16
redis.call('RPUSH', KEYS[9], size)
lb = lb + size
local budget = tonumber(ARGV[13]) - tonumber(redis.call('HGET', KEYS[1], 'bytes'))
local kept = redis.call('LLEN', KEYS[9])
local trimmed = false
while kept > 0 and (kept > tonumber(ARGV[9]) or lb > budget) do
  lb = lb - tonumber(redis.call('LPOP', KEYS[9]))
  kept = kept - 1
  trimmed = true
end
-- Entries are the sequences seq - kept + 1 .. seq: one per commit.
if trimmed then redis.call('XTRIM', KEYS[5], 'MINID', (seq - kept + 1) .. '-0') end
redis.call('HSET', KEYS[1], 'lb', lb)
for _, i in ipairs({2, 3, 4, 5, 9}) do redis.call('PEXPIRE', KEYS[i], ttl) end
redis.call('PUBLISH', ARGV[10], seq .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|' .. name .. '|' .. ARGV[7])
return {1, seq}`,
);

/** {sequence, encoded variable or nil} of ARGV[1], or nil without session. */
export const GET_VARIABLE = script(
  2,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return {redis.call('HGET', KEYS[1], 'seq'), redis.call('HGET', KEYS[2], ARGV[1])}`,
);

/**
 * {sequence, {name, encoded, ...}} of all variables, or {sequence, {encoded or nil, ...}}
 * of the names in ARGV; nil without session.
 */
export const SNAPSHOT = script(
  2,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local seq = redis.call('HGET', KEYS[1], 'seq')
if #ARGV == 0 then return {seq, redis.call('HGETALL', KEYS[2])} end
return {seq, redis.call('HMGET', KEYS[2], unpack(ARGV))}`,
);

/** {sequence, count} of the session, or nil without session. */
export const COUNTS = script(
  2,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return {redis.call('HGET', KEYS[1], 'seq'), redis.call('HLEN', KEYS[2])}`,
);

/**
 * {sequence, entries} with up to ARGV[2] log entries from id ARGV[1] on, or nil without
 * session. KEYS: meta, log.
 */
export const READ_LOG = script(
  2,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return {redis.call('HGET', KEYS[1], 'seq'), redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])}`,
);

/** Gives keys 2.. of a script the TTL of the session's meta key (they may have been created just now). */
const SAME_TTL = `
local ttl = redis.call('PTTL', KEYS[1])
for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end`;

/**
 * Claims a request id of the session (tools/replay.ts). KEYS: meta, calls, callt.
 * ARGV: 1 request id, 2 node, 3 claim until (ms), 4 now (ms), 5 window (ms), 6 node whose
 * claim may be taken over ('' for none), 7 the call's fingerprint. Returns {0} claimed,
 * {1, outcome} recorded, {2, node, until} claimed by a call still running (on any node,
 * this one too), {3} when that record or claim has another fingerprint (an entry without
 * a readable one counts as another), or nil without session.
 */
export const CLAIM_CALL = script(
  3,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  if string.sub(cur, 1, 2) == 'd|' then
    local at = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0')
    if at > tonumber(ARGV[4]) - tonumber(ARGV[5]) then
      if string.sub(cur, 3, 3 + #ARGV[7]) ~= ARGV[7] .. '|' then return {3} end
      return {1, string.sub(cur, 4 + #ARGV[7])}
    end
    -- The claim replaces a record past the window: it no longer counts as one.
    if redis.call('ZREM', KEYS[3], ARGV[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'rb') == 1 then
      redis.call('HINCRBY', KEYS[1], 'rb', -(#cur + #ARGV[1]))
    end
  else
    local node, untl, fp = string.match(cur, '^r|([^|]*)|(%d+)|?(%x*)$')
    if node ~= ARGV[6] and tonumber(untl or '0') > tonumber(ARGV[4]) then
      if fp ~= ARGV[7] then return {3} end
      return {2, node, untl}
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[1], 'r|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[7])
${SAME_TTL}
return {0}`,
);

/**
 * Settles a claim (tools/replay.ts). KEYS: meta, calls, callt. ARGV: 1 request id, 2 node,
 * 3 outcome ('' releases the claim), 4 now (ms), 5 window (ms), 6 most records kept, 7 most
 * bytes of records kept (each counted as its value and request id, in the meta field rb).
 * The record keeps the claim's fingerprint. The oldest records go while any bound is passed;
 * a record alone over the bytes is not kept (and drops nothing). Returns 1, or 0 when the
 * claim is not the node's (or there is no session).
 */
export const SETTLE_CALL = script(
  3,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
local mine = 'r|' .. ARGV[2] .. '|'
if not cur or string.sub(cur, 1, #mine) ~= mine then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
local function size(id) return redis.call('HSTRLEN', KEYS[2], id) + #id end
local rb = redis.call('HGET', KEYS[1], 'rb')
if rb then
  rb = tonumber(rb)
else
  -- Records kept before they were counted: counted once now.
  rb = 0
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do rb = rb + size(id) end
end
redis.call('HSET', KEYS[2], ARGV[1], 'd|' .. string.match(cur, '|(%x*)$') .. '|' .. ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
local added = size(ARGV[1])
if added > tonumber(ARGV[7]) then
  -- Larger than all the records may be: not kept, and nothing else is dropped for it.
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  added = 0
end
rb = rb + added
local cutoff = tonumber(ARGV[4]) - tonumber(ARGV[5])
local count = redis.call('ZCARD', KEYS[3])
while count > 0 do
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local id = oldest[1]
  if count <= tonumber(ARGV[6]) and rb <= tonumber(ARGV[7]) and tonumber(oldest[2]) > cutoff then break end
  rb = rb - size(id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  count = count - 1
end
redis.call('HSET', KEYS[1], 'rb', rb)
${SAME_TTL}
return 1`,
);

/**
 * A sliding-window rate limit shared by every node: at most ARGV[1] starts in any 60 s,
 * by Redis's clock. KEYS: the tool's window (sorted set start id -> start ms). ARGV: 1 the
 * limit, 2 a unique id for this start. Returns 0 when admitted, else the ms until a start
 * leaves the window.
 */
export const RATE = script(
  1,
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + 60000 - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 60000)
return 0`,
);

/**
 * Lists a session tool as served by a node (ARGV: name, "<node>|<spec>"), or with an empty
 * value removes it when that node (ARGV[3]) lists it. KEYS: meta, tools. Returns 0 without session.
 */
export const SESSION_TOOL = script(
  2,
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '' then
  local cur = redis.call('HGET', KEYS[2], ARGV[1])
  if cur and string.sub(cur, 1, #ARGV[3] + 1) == ARGV[3] .. '|' then redis.call('HDEL', KEYS[2], ARGV[1]) end
  return 1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
${SAME_TTL}
return 1`,
);

type ScriptCall = (...args: (string | Buffer | number)[]) => Promise<unknown>;

const ALL_SCRIPTS = [
  CREATE,
  TOUCH,
  END,
  END_EXPIRED,
  RESERVE,
  SWEEP,
  READ_SLOT,
  COMMIT,
  GET_VARIABLE,
  SNAPSHOT,
  COUNTS,
  READ_LOG,
  CLAIM_CALL,
  SETTLE_CALL,
  RATE,
  SESSION_TOOL,
];

function commandName(s: LuaScript): string {
  return `toolbridge_${s.sha}`;
}

/**
 * Registers every script as a command of `redis`, so that auto-pipelining batches them like
 * every other command. Call it before the client sends anything: ioredis copies the defined
 * commands into each auto-pipeline as it makes it, and a command defined later that joins a
 * pipeline made earlier breaks that pipeline (an uncaught TypeError in ioredis).
 */
export function defineScripts(redis: Redis): void {
  for (const s of ALL_SCRIPTS) redis.defineCommand(commandName(s), { lua: s.lua, numberOfKeys: s.keys });
}

/**
 * Runs `script` (by its hash; ioredis loads it when the server does not know it yet),
 * with replies as Buffers, on a client given defineScripts.
 */
export function runScript(
  redis: Redis,
  s: LuaScript,
  keys: readonly string[],
  args: readonly (string | Buffer | number)[],
): Promise<unknown> {
  const call = (redis as unknown as Record<string, ScriptCall | undefined>)[`${commandName(s)}Buffer`];
  if (call === undefined) throw new Error("a Lua script of the session store was run before defineScripts");
  return call.call(redis, ...keys, ...args);
}
