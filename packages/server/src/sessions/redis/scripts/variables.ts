/**
 * The scripts of the variables part (redis/variable-store.ts): reading a variable's slot,
 * committing a mutation together with its log entry and its publication, and the reads of
 * variables and of the log. Keys: RedisKeys.session, or meta and one other key of it.
 */
import { SESSION_KEYS, script } from "./lua.js";

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
 * variables leave), 14 the command it is published with (PUBLISH, or SPUBLISH on a Redis
 * Cluster, where the channel lives in the session's slot). Returns {1, sequence}, {0,
 * current slot...} when the slot was stale or the bytes would exceed ARGV[12], or nil
 * without session. The change goes to the log and
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
redis.call(ARGV[14], ARGV[10], seq .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|' .. name .. '|' .. ARGV[7])
return {1, seq}`,
  { durable: true },
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
