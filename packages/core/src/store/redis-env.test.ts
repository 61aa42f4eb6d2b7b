import { describe, expect, it } from 'vitest';
import { keywardOptionsFromEnv } from '../options.js';
import { createRedisStore } from './redis.js';
import { redisError } from './redis-scripts.js';

describe('Redis Cluster, Sentinel and store timeout from the environment', () => {
  it('reads KEYWARD_REDIS_CLUSTER, KEYWARD_REDIS_SENTINELS/_NAME and KEYWARD_STORE_TIMEOUT_MS', () => {
    expect(
      keywardOptionsFromEnv({ KEYWARD_REDIS_CLUSTER: '10.0.0.1:7000, redis-2:7001,[::1]:7002' }),
    ).toEqual(
      expect.objectContaining({
        redisCluster: [
          { host: '10.0.0.1', port: 7000 },
          { host: 'redis-2', port: 7001 },
          { host: '::1', port: 7002 },
        ],
      }),
    );
    const sentinel = keywardOptionsFromEnv({
      KEYWARD_REDIS_SENTINELS: 's1:26379,s2:26379',
      KEYWARD_REDIS_SENTINEL_NAME: 'main',
      KEYWARD_STORE_TIMEOUT_MS: '1000',
    });
    expect(sentinel.redisSentinels).toEqual([
      { host: 's1', port: 26379 },
      { host: 's2', port: 26379 },
    ]);
    expect(sentinel.redisSentinelName).toBe('main');
    expect(sentinel.storeTimeoutMs).toBe(1000);
    expect(keywardOptionsFromEnv({}).redisCluster).toBeUndefined();
  });

  it('refuses malformed or conflicting values with config_invalid', () => {
    for (const env of [
      { KEYWARD_REDIS_CLUSTER: 'redis-1' },
      { KEYWARD_REDIS_CLUSTER: 'redis-1:0' },
      { KEYWARD_REDIS_CLUSTER: 'redis-1:7000,' },
      { KEYWARD_REDIS_SENTINELS: 's1:26379' },
      { KEYWARD_REDIS_SENTINELS: 's1:26379', KEYWARD_REDIS_SENTINEL_NAME: 'm', REDIS_URL: 'redis://x:1' },
      { KEYWARD_REDIS_CLUSTER: 'a:1', REDIS_URL: 'redis://x:1' },
      { KEYWARD_STORE_TIMEOUT_MS: '1s' },
      { KEYWARD_STORE_TIMEOUT_MS: '0' },
    ]) {
      expect(() => keywardOptionsFromEnv(env)).toThrow(expect.objectContaining({ code: 'config_invalid' }));
    }
  });

  it('refuses a commandTimeoutMs that is not a whole number of ms', () => {
    for (const commandTimeoutMs of [0, -1, 1.5, Number.NaN, 700_000]) {
      expect(() => createRedisStore({ url: 'redis://127.0.0.1:1', commandTimeoutMs })).toThrow(
        expect.objectContaining({ code: 'config_invalid', details: { option: 'commandTimeoutMs' } }),
      );
    }
  });

  it('reads a cluster that redirects in circles while it fails over as store_unavailable', () => {
    const err = new Error(
      'Too many Cluster redirections. Last error: ReplyError: MOVED 10286 127.0.0.1:7101',
    );
    expect(redisError(err, 'get').code).toBe('store_unavailable');
    expect(redisError(new Error('ERR unknown command'), 'get').code).toBe('store_error');
  });
});
