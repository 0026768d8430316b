/** The script of the rate slots part (redis/rate-slots.ts). Key: RedisKeys.rate. */
import { script } from "./lua.js";

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
