/** The script of the session tool directory (redis/session-tools.ts). Keys: RedisKeys.tools (meta, tools). */
import { SAME_TTL, script } from "./lua.js";

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
