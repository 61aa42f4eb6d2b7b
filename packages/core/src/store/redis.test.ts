import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { describeStoreContract } from '../../../testing/src/store-contract.js';
import { freePort, hasTool } from '../../../testing/src/tools.js';
import { createRedisStore } from './redis.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const filePrefix = uniquePrefix('store');
let current = '';
let n = 0;

function dropPrefix(prefix: string): Promise<void> {
  return dropRedisPrefix(url, prefix);
}

describeWithRedis('redis', () => {
  describeStoreContract('redis', {
    async make() {
      current = `{${filePrefix}${++n}}:`;
      return createRedisStore({ url, prefix: current });
    },
    async makePeer() {
      return createRedisStore({ url, prefix: current });
    },
    cleanup: () => dropPrefix(current),
  });

  describe('redis store', () => {
    const clients: Redis[] = [];
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.quit()));
      await dropPrefix(`{${filePrefix}`);
    });

    it('never closes a client passed in', async () => {
      const client = new Redis(url);
      clients.push(client);
      const store = createRedisStore({ client, prefix: `{${filePrefix}client}:` });
      await store.set('k', 'v');
      await store.subscribe('c', () => {});
      await store.close();
      expect(client.status).toBe('ready');
      expect(await client.get(`{${filePrefix}client}:k:k`)).toBe('v');
    });

    it('keeps keys and channels under the prefix', async () => {
      const client = new Redis(url);
      clients.push(client);
      const prefix = `{${filePrefix}layout}:`;
      const store = createRedisStore({ url, prefix });
      await store.set('a', '1');
      await store.acquireLock('l', 10_000);
      const [, keys] = await client.scan('0', 'MATCH', `{${filePrefix}layout}*`, 'COUNT', 1000);
      expect(keys.sort()).toEqual([`${prefix}fence:l`, `${prefix}k:a`, `${prefix}lock:l`]);
      await store.close();
    });

    it('rejects a cluster client with a prefix that has no hash tag', () => {
      const fakeCluster = { isCluster: true } as unknown as Redis;
      expect(() => createRedisStore({ client: fakeCluster, prefix: 'plain:' })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      );
      expect(() => createRedisStore({ url, client: fakeCluster })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      );
    });
  });
});

const hasRedisServer = hasTool('redis-server');

describe('redis store without a server', () => {
  it.runIf(hasRedisServer)(
    'reports a stopped server as store_unavailable and recovers when it returns',
    async () => {
      const port = await freePort();
      const start = () => spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no']);
      let server = start();
      const store = createRedisStore({ url: `redis://127.0.0.1:${port}` });
      const until = async (ok: () => Promise<unknown>) => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          try {
            return await ok();
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await delay(20);
          }
        }
      };
      try {
        await until(() => store.set('k', 'v'));
        server.kill('SIGKILL');
        await once(server, 'exit');
        const started = performance.now();
        await expect(store.get('k')).rejects.toMatchObject({ code: 'store_unavailable' });
        expect(performance.now() - started).toBeLessThan(1500);
        server = start();
        await until(() => store.ping());
        await store.set('k', 'back');
        expect(await store.get('k')).toBe('back');
      } finally {
        await store.close();
        server.kill('SIGKILL');
      }
    },
  );

  it('fails fast with store_unavailable and no password in the message', async () => {
    const port = await freePort();
    const store = createRedisStore({ url: `redis://:hunter2-secret@127.0.0.1:${port}` });
    const started = performance.now();
    const err = await store.get('k').catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toMatchObject({ name: 'KeywardError', code: 'store_unavailable' });
    expect(String((err as Error).message)).not.toContain('hunter2');
    expect(JSON.stringify((err as { details?: unknown }).details)).not.toContain('hunter2');
    expect(elapsed).toBeLessThan(1500);
    await expect(store.ping()).rejects.toMatchObject({ code: 'store_unavailable' });
    await store.close();
    await store.close();
  });
});
