import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startCluster,
  startSentinels,
  type TestCluster,
  type TestSentinels,
  withClient,
} from '../../../testing/src/redis-ha.js';
import { describeStoreContract } from '../../../testing/src/store-contract.js';
import { hasTool } from '../../../testing/src/tools.js';
import { createKeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { keywardOptionsFromEnv } from '../options.js';
import { createRedisStore } from './redis.js';
import type { Store } from './types.js';

/**
 * The store contract on the two highly available Redis topologies (throwaway servers of
 * @keyward/testing, one after the other in this file): a three-master Redis Cluster
 * (`startCluster`: every script stays on one slot (no CROSSSLOT), collections and standalone keys
 * spread over the masters, and scan walks all of them), and a master + replica watched by three
 * sentinels (`startSentinels`: the store finds the master through the sentinels).
 */
const canRun = hasTool('redis-server') && hasTool('redis-cli');

let cluster: TestCluster | undefined;
const nodes = () => cluster?.nodes ?? [];

/** Number of keys each master holds. */
async function keysPerNode(): Promise<number[]> {
  return Promise.all(
    nodes().map(async ({ port }) => {
      const client = new Redis(port, '127.0.0.1');
      try {
        return await client.dbsize();
      } finally {
        client.disconnect();
      }
    }),
  );
}

async function flushAll(): Promise<void> {
  await Promise.all(
    nodes().map(async ({ port }) => {
      const client = new Redis(port, '127.0.0.1');
      try {
        await client.flushall(); // throwaway servers of this file only
      } finally {
        client.disconnect();
      }
    }),
  );
}

const clusterNodes = () => nodes().map((n) => ({ host: '127.0.0.1', port: n.port }));
let n = 0;
let current = '';

describe.runIf(canRun)('redis store on a Redis Cluster', () => {
  beforeAll(async () => {
    cluster = await startCluster(3, 0);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  describeStoreContract('redis cluster', {
    async make() {
      current = `kwcluster${++n}:`;
      return createRedisStore({ cluster: { nodes: clusterNodes() }, prefix: current });
    },
    async makePeer() {
      return createRedisStore({ cluster: { nodes: clusterNodes() }, prefix: current });
    },
    cleanup: flushAll,
  });

  it('KEYWARD_REDIS_CLUSTER makes the core open a cluster store', async () => {
    const seeds = clusterNodes()
      .map((node) => `${node.host}:${node.port}`)
      .join(',');
    const core = await createKeywardCore({
      ...keywardOptionsFromEnv({
        KEYWARD_REDIS_CLUSTER: seeds,
        KEYWARD_REDIS_PREFIX: 'kwenv:',
        KEYWARD_STORE_TIMEOUT_MS: '1000',
        KEYWARD_MASTER_KEY: MasterKey.generate().exportText(),
      }),
      logger: false,
      audit: false,
      scheduler: false,
    });
    try {
      const { kid } = await core.keys.rotate({ use: 'sig' });
      const store = createRedisStore({ cluster: { nodes: clusterNodes() }, prefix: 'kwenv:' });
      try {
        expect(await store.get('keyring/doc')).toContain(kid);
      } finally {
        await store.close();
      }
    } finally {
      await core.close();
      await flushAll();
    }
  });

  describe('layout', () => {
    let store: Store;
    beforeAll(() => {
      store = createRedisStore({ cluster: { nodes: clusterNodes() } });
    });
    afterAll(async () => {
      await store.close();
      await flushAll();
    });

    it('spreads collections and standalone keys over every master and scans them all', async () => {
      const writes: Promise<unknown>[] = [];
      for (let owner = 0; owner < 30; owner++) {
        for (let k = 0; k < 3; k++)
          writes.push(store.set(`owner:${owner}/${k}`, `${owner}.${k}`, { ttlMs: 60_000 }));
        writes.push(store.set(`solo:${owner}`, 's'));
        writes.push(store.increment(`count:${owner}/hits`));
      }
      await Promise.all(writes);
      const perNode = await keysPerNode();
      expect(perNode.every((count) => count > 0)).toBe(true);

      expect((await store.list('owner:7/')).entries).toEqual([
        { key: 'owner:7/0', value: '7.0' },
        { key: 'owner:7/1', value: '7.1' },
        { key: 'owner:7/2', value: '7.2' },
      ]);
      expect(await store.take('owner:7/1')).toBe('7.1');
      expect(await store.delete('owner:7/2')).toBe(true);
      expect(await store.compareAndSet('owner:7/0', '7.0', 'new')).toBe(true);
      expect((await store.list('owner:7/')).entries).toEqual([{ key: 'owner:7/0', value: 'new' }]);

      const seen = new Set<string>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Awaited<ReturnType<Store['scan']>> = await store.scan('owner:', {
          limit: 10,
          ...(cursor === null ? {} : { cursor }),
        });
        for (const { key } of page.entries) seen.add(key);
        cursor = page.cursor;
        pages++;
      } while (cursor !== null && pages < 1000);
      expect(seen.size).toBe(30 * 3 - 2);
      expect(pages).toBeGreaterThan(3);

      const lock = await store.acquireLock('rotation', 10_000);
      expect(lock?.token).toBe(1);
      expect(await lock?.release()).toBe(true);
    });
  });
});

let sentinels: TestSentinels | undefined;
let s = 0;
let sentinelPrefix = '';
const sentinelStore = () =>
  createRedisStore({
    sentinels: {
      nodes: sentinels!.sentinels.map((node) => ({ host: '127.0.0.1', port: node.port })),
      name: sentinels!.name,
    },
    prefix: sentinelPrefix,
  });

describe.runIf(canRun)('redis store on Redis Sentinel', () => {
  beforeAll(async () => {
    sentinels = await startSentinels();
  }, 60_000);
  afterAll(async () => {
    await sentinels?.stop();
  });

  describeStoreContract('redis sentinel', {
    async make() {
      sentinelPrefix = `kwsentinel${++s}:`;
      return sentinelStore();
    },
    async makePeer() {
      return sentinelStore();
    },
    // Throwaway servers of this file only.
    cleanup: () => withClient(sentinels!.master.port, async (c) => void (await c.flushall())),
  });

  it('reaches the master the sentinels name, and its writes reach the replica', async () => {
    sentinelPrefix = 'kwsentinel-layout:';
    const store = sentinelStore();
    try {
      await store.set('probe', 'v');
      expect(await sentinels!.currentMaster()).toBe(sentinels!.master.port);
      expect(await withClient(sentinels!.master.port, (c) => c.get('kwsentinel-layout:k:{probe}'))).toBe('v');
      await withClient(sentinels!.master.port, (c) => c.call('WAIT', '1', '2000'));
      expect(await withClient(sentinels!.replica.port, (c) => c.get('kwsentinel-layout:k:{probe}'))).toBe(
        'v',
      );
    } finally {
      await store.close();
    }
  });
});
