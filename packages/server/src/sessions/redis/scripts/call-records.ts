/**
 * The scripts of the call records part (redis/call-records.ts): claiming a request id and
 * settling the claim with the call's outcome, within the session's record limits.
 * Keys: RedisKeys.calls (meta, calls, callt).
 */
import { SAME_TTL, script } from "./lua.js";

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
  { durable: true },
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
  { durable: true },
);
