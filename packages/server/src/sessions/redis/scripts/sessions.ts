/**
 * The scripts of the sessions part (redis/session-table.ts): create or attach, refresh,
 * end, and the global index that counts sessions against their limits and finds the
 * expired ones. Keys: RedisKeys.session (all of a session's keys) or the index and an
 * owner's index.
 */
import { LEGACY_OWNER } from "../../session-table.js";
import { SESSION_KEYS, script } from "./lua.js";

/** PEXPIRE every key of the session; `ttl` names the Lua expression of the TTL. */
const EXPIRE_ALL = (ttl: string) => `for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ${ttl}) end`;

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
  { durable: true },
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
  { durable: true },
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
