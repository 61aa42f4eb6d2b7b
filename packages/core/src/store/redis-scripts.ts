import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { KeywardError } from '../errors.js';

/** A Lua script run by EVALSHA, falling back to EVAL once when the server has not cached it. */
export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** Lua helpers shared by the collection scripts (KEYS[2] index, KEYS[3] expiry index, ARGV[1] member id). */
const INDEX_LUA = `
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function indexed(ttl)
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  if ttl == '' then
    redis.call('ZREM', KEYS[3], ARGV[1])
  else
    redis.call('ZADD', KEYS[3], string.format('%.0f', nowms() + tonumber(ttl)), ARGV[1])
  end
end
local function unindexed()
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
`;

/**
 * Every read-modify-write is one Lua script, so it runs atomically on the server. A script's keys
 * share one hash tag (a member, its collection's index and expiry index all carry `{collection}`;
 * a lock and its fence carry `{lock name}`), so in a cluster they sit on one slot.
 *
 * The `member*` scripts are the writes of a collection member: KEYS[1] the record, KEYS[2] the
 * collection's index (sorted set of member ids, score 0, paged with ZRANGEBYLEX), KEYS[3] its
 * expiry index (sorted set of member ids scored by expiry time in ms, from the server's TIME).
 */
export const SCRIPTS = {
  // KEYS[1] key; ARGV: hasExpected ('0'|'1'), expected, value, ttlMs ('' = none)
  compareAndSet: script(`
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then redis.call('SET', KEYS[1], ARGV[3]) else redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end
return 1`),
  // KEYS[1] key. GETDEL would do on Redis >= 6.2; the script also runs on older servers.
  take: script(`
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value`),
  // ARGV: id, value, ttlMs ('' = none)
  memberSet: script(`${INDEX_LUA}
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
indexed(ARGV[3])
return 1`),
  // ARGV: id, hasExpected ('0'|'1'), expected, value, ttlMs ('' = none)
  memberCompareAndSet: script(`${INDEX_LUA}
local current = redis.call('GET', KEYS[1])
if ARGV[2] == '0' then
  if current then return 0 end
elseif current ~= ARGV[3] then
  return 0
end
if ARGV[5] == '' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5]) end
indexed(ARGV[5])
return 1`),
  // ARGV: id
  memberTake: script(`${INDEX_LUA}
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
unindexed()
return value`),
  // ARGV: id
  memberDelete: script(`${INDEX_LUA}
local removed = redis.call('DEL', KEYS[1])
unindexed()
return removed`),
  // ARGV: id, by, ttlMs ('' = none). INCRBY keeps the TTL; a counter without one (new, or its TTL
  // long gone) gets `ttlMs` when given, else leaves the expiry index, so the prune in list never drops it.
  memberIncrement: script(`${INDEX_LUA}
local value = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  if ARGV[3] == '' then
    redis.call('ZREM', KEYS[3], ARGV[1])
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    indexed(ARGV[3])
  end
end
return value`),
  // KEYS[1] key; ARGV: by, ttlMs. A counter without an expiry (a new one) gets `ttlMs`; one that
  // has an expiry keeps it (PEXPIRE … NX needs Redis 7; this runs on older servers too).
  incrementWithTtl: script(`
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value`),
  // KEYS[1] index, KEYS[2] expiry index; ARGV: record-key prefix of the collection, last id of the
  // previous page ('' = first page), limit, prune budget. First drops up to `prune` expired members
  // (records and index entries), then reads one page of ids in lexicographic order and their
  // values; an id whose record is gone (expired meanwhile, evicted) leaves the index, and comes
  // back with a nil value that the driver skips.
  list: script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now), 'LIMIT', 0, ARGV[4])
if #expired > 0 then
  local records = {}
  for i, id in ipairs(expired) do records[i] = ARGV[1] .. id end
  redis.call('DEL', unpack(records))
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('ZREM', KEYS[2], unpack(expired))
end
local min = '-'
if ARGV[2] ~= '' then min = '(' .. ARGV[2] end
local ids = redis.call('ZRANGEBYLEX', KEYS[1], min, '+', 'LIMIT', 0, ARGV[3])
if #ids == 0 then return {ids, {}} end
local records = {}
for i, id in ipairs(ids) do records[i] = ARGV[1] .. id end
local values = redis.call('MGET', unpack(records))
local gone = {}
for i = 1, #ids do
  if not values[i] then gone[#gone + 1] = ids[i] end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return {ids, values}`),
  // KEYS[1] lock, KEYS[2] fencing counter; ARGV: holder, ttlMs. The counter is bumped in the same
  // script as the grant, so a token is never handed out twice or out of order.
  acquireLock: script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0`),
  // KEYS[1] lock; ARGV: holder, ttlMs
  extendLock: script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`),
  // KEYS[1] lock; ARGV: holder
  releaseLock: script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`),
  // No KEYS (standalone servers only: on a cluster the driver scans each master itself);
  // ARGV: cursor, match pattern, count. SCAN and MGET in one round trip; expired keys come back nil.
  scan: script(`
local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local keys = page[2]
if #keys == 0 then return {page[1], keys, {}} end
return {page[1], keys, redis.call('MGET', unpack(keys))}`),
} as const;

/** Runs a script by SHA, loading it with EVAL on NOSCRIPT (after a restart or failover). */
export async function runScript(
  client: Redis | Cluster,
  { lua, sha }: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  try {
    return await client.evalsha(sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.eval(lua, keys.length, ...keys, ...args);
  }
}

const UNAVAILABLE_REPLY = /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOAUTH|WRONGPASS)\b/;
const UNAVAILABLE_MESSAGE =
  /connection is closed|stream isn't writeable|command timed out|max retries per request|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|failed to refresh slots|too many cluster redirections|all sentinels are unreachable|none of the sentinels/i;

/**
 * Maps an ioredis failure to a keyward error: a lost or refused connection, a timeout or a server
 * that is loading or failing over is `store_unavailable`; any other reply error is `store_error`.
 * The message names the operation only; the ioredis error stays available as `cause`.
 */
export function redisError(err: unknown, operation: string): KeywardError {
  if (err instanceof KeywardError) return err;
  const name = err instanceof Error ? err.name : '';
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const unavailable =
    name === 'MaxRetriesPerRequestError' ||
    name === 'ClusterAllFailedError' ||
    (name === 'ReplyError' ? UNAVAILABLE_REPLY.test(message) : UNAVAILABLE_MESSAGE.test(message)) ||
    (typeof code === 'string' && /^E(CONN|HOST|NET|PIPE|TIMEDOUT|NOTFOUND|AI_AGAIN)/.test(code));
  return new KeywardError(
    unavailable ? 'store_unavailable' : 'store_error',
    `redis store ${unavailable ? 'is unavailable' : 'failed'} during ${operation}`,
    { cause: err, details: { driver: 'redis', operation } },
  );
}

/** Escapes a literal for a Redis glob pattern (SCAN MATCH). */
export function escapeGlob(literal: string): string {
  return literal.replace(/[\\*?[\]]/g, '\\$&');
}
