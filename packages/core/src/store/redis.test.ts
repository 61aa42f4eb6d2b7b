import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
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

/**
 * Counts the commands that touch the current store's keys, from a MONITOR connection opened on
 * the first call (commands run inside Lua scripts included). A SCAN or KEYS counts as the whole
 * database (DBSIZE), since that is what it walks. Other test files' commands carry other prefixes.
 */
let monitor: { admin: Redis; feed: Redis; lines: string[][] } | undefined;
async function touched(): Promise<number> {
  if (monitor === undefined) {
    const admin = new Redis(url);
    const feed = await admin.monitor();
    const lines: string[][] = [];
    feed.on('monitor', (_time: string, args: string[]) => lines.push(args));
    monitor = { admin, feed, lines };
  }
  // MONITOR reports commands in execution order: once the marker shows, everything before has.
  const marker = `${current}marker:${randomUUID()}`;
  await monitor.admin.exists(marker);
  const deadline = Date.now() + 10_000;
  while (!monitor.lines.some((args) => args.includes(marker))) {
    if (Date.now() > deadline) throw new Error('MONITOR never showed the marker');
    await delay(5);
  }
  const lines = monitor.lines.splice(0);
  const dbsize = await monitor.admin.dbsize();
  let count = 0;
  for (const args of lines) {
    if (args.includes(marker) || !args.some((a) => a.includes(current))) continue;
    const name = (args[0] ?? '').toLowerCase();
    count += name === 'scan' || name === 'keys' ? dbsize : 1;
  }
  return count;
}

async function stopMonitor(): Promise<void> {
  const m = monitor;
  monitor = undefined;
  m?.feed.disconnect();
  await m?.admin.quit();
}

describeWithRedis('redis', () => {
  afterAll(stopMonitor);
  describeStoreContract('redis', {
    async make() {
      current = `${filePrefix}${++n}:`;
      return createRedisStore({ url, prefix: current });
    },
    async makePeer() {
      return createRedisStore({ url, prefix: current });
    },
    touched,
    async fill(_store, entries) {
      // A second store with auto-pipelining: many commands per round trip.
      const filler = createRedisStore({ url, prefix: current, redisOptions: { enableAutoPipelining: true } });
      try {
        for (let i = 0; i < entries.length; i += 10_000)
          await Promise.all(entries.slice(i, i + 10_000).map(([k, v]) => filler.set(k, v)));
      } finally {
        await filler.close();
      }
    },
    cleanup: async () => {
      await stopMonitor();
      await dropPrefix(current);
    },
  });

  describe('redis store', () => {
    const clients: Redis[] = [];
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.quit()));
      await dropPrefix(filePrefix);
      await dropPrefix(`{${filePrefix}`);
    });

    it('never closes a client passed in', async () => {
      const client = new Redis(url);
      clients.push(client);
      const store = createRedisStore({ client, prefix: `${filePrefix}client:` });
      await store.set('k', 'v');
      await store.subscribe('c', () => {});
      await store.close();
      expect(client.status).toBe('ready');
      expect(await client.get(`${filePrefix}client:k:{k}`)).toBe('v');
    });

    it('keeps keys under the prefix, a member with its collection index on one slot, collections and standalone keys on their own', async () => {
      const client = new Redis(url);
      clients.push(client);
      const prefix = `${filePrefix}layout:`;
      const store = createRedisStore({ url, prefix });
      await store.set('a', '1');
      await store.set('b', '2');
      await store.set('apikey-owner:b3du/kw1', '1', { ttlMs: 60_000 });
      await store.set('apikey-owner:Y2Fyb2w/kw2', '1');
      await store.acquireLock('l', 10_000);
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        keys.push(...found);
        cursor = next;
      } while (cursor !== '0');
      expect(keys.sort()).toEqual(
        [
          'fence:{l}',
          'i:{apikey-owner:Y2Fyb2w/}',
          'i:{apikey-owner:b3du/}',
          'k:{a}',
          'k:{apikey-owner:Y2Fyb2w/}kw2',
          'k:{apikey-owner:b3du/}kw1',
          'k:{b}',
          'lock:{l}',
          'x:{apikey-owner:b3du/}',
        ]
          .map((k) => prefix + k)
          .sort(),
      );
      const slot = (key: string) => keySlot(key);
      const member = slot(`${prefix}k:{apikey-owner:b3du/}kw1`);
      expect(slot(`${prefix}i:{apikey-owner:b3du/}`)).toBe(member);
      expect(slot(`${prefix}x:{apikey-owner:b3du/}`)).toBe(member);
      expect(slot(`${prefix}k:{apikey-owner:Y2Fyb2w/}kw2`)).not.toBe(member);
      expect(slot(`${prefix}k:{a}`)).not.toBe(slot(`${prefix}k:{b}`));
      expect(slot(`${prefix}lock:{l}`)).toBe(slot(`${prefix}fence:{l}`));
      expect(await client.zrange(`${prefix}i:{apikey-owner:b3du/}`, 0, -1, 'WITHSCORES')).toEqual([
        'kw1',
        '0',
      ]);
      await store.close();
    });

    it('keeps working with a prefix that carries its own hash tag (everything on one slot)', async () => {
      const prefix = `{${filePrefix}legacy}:`;
      const store = createRedisStore({ url, prefix });
      await store.set('c/1', 'one');
      await store.set('c/2', 'two', { ttlMs: 60_000 });
      await store.set('solo', 's');
      expect((await store.list('c/')).entries).toEqual([
        { key: 'c/1', value: 'one' },
        { key: 'c/2', value: 'two' },
      ]);
      const scanned = (await store.scan('')).entries.map((e) => e.key).sort();
      expect(scanned).toEqual(['c/1', 'c/2', 'solo']);
      expect(keySlot(`${prefix}k:{c/}1`)).toBe(keySlot(`${prefix}k:{solo}`));
      await store.close();
    });

    it('heals an index whose record vanished behind its back (eviction)', async () => {
      const client = new Redis(url);
      clients.push(client);
      const prefix = `${filePrefix}heal:`;
      const store = createRedisStore({ url, prefix });
      await store.set('h/1', 'one');
      await store.set('h/2', 'two');
      await client.del(`${prefix}k:{h/}1`);
      expect((await store.list('h/')).entries).toEqual([{ key: 'h/2', value: 'two' }]);
      expect(await client.zrange(`${prefix}i:{h/}`, 0, -1)).toEqual(['2']);
      await store.close();
    });

    it('prunes expired members from both indexes in list, a bounded number per call', async () => {
      const client = new Redis(url);
      clients.push(client);
      const prefix = `${filePrefix}prune:`;
      const store = createRedisStore({ url, prefix });
      await Promise.all(Array.from({ length: 150 }, (_, i) => store.set(`e/${i}`, 'v', { ttlMs: 20 })));
      await store.set('e/kept', 'v', { ttlMs: 60_000 });
      await delay(60);
      expect((await store.list('e/')).entries).toEqual([{ key: 'e/kept', value: 'v' }]);
      // 100 pruned by that call; the other 50 left the index as nil values of the page it read.
      expect(await client.zcard(`${prefix}x:{e/}`)).toBe(1);
      expect(await client.zrange(`${prefix}i:{e/}`, 0, -1)).toEqual(['kept']);
      await store.close();
    });

    it('accepts a cluster client whatever the prefix, and rejects two connection options', () => {
      const fakeCluster = { isCluster: true } as unknown as Redis;
      expect(createRedisStore({ client: fakeCluster, prefix: 'plain:' }).driver).toBe('redis');
      expect(() => createRedisStore({ url, client: fakeCluster })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      );
    });
  });
});

/** Redis Cluster key slot: CRC16 (XMODEM) of the first non-empty `{hash tag}` or the whole key, mod 16384. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  let hashed = key;
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(hashed, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

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
