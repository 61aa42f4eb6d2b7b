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

/**
 * Every read-modify-write is one Lua script, so it runs atomically on the server; the keys of a
 * script share the store prefix's hash tag, so in a cluster they sit on one slot.
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
  // KEYS[1] any key of the store (routes the script to the node that holds the store's slot);
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
  /connection is closed|stream isn't writeable|command timed out|max retries per request|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|failed to refresh slots|all sentinels are unreachable|none of the sentinels/i;

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
