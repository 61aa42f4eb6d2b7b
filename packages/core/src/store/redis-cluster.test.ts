import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStoreContract } from '../../../testing/src/store-contract.js';
import { freePort, hasTool } from '../../../testing/src/tools.js';
import { createRedisStore } from './redis.js';
import type { Store } from './types.js';

/**
 * The store on a real three-master Redis Cluster (throwaway servers on free ports): every script
 * stays on one slot (no CROSSSLOT), collections and standalone keys spread over the masters, and
 * scan walks all of them.
 */
const canRun =
  hasTool('redis-server') && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;

interface Node {
  port: number;
  process: ChildProcess;
}

const nodes: Node[] = [];
const dir = mkdtempSync(join(tmpdir(), 'keyward-cluster-'));

async function startCluster(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const busPort = await freePort();
    const nodeDir = join(dir, String(i));
    spawnSync('mkdir', ['-p', nodeDir]);
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(busPort),
        '--cluster-config-file',
        join(nodeDir, 'nodes.conf'),
        '--dir',
        nodeDir,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    nodes.push({ port, process: child });
  }
  for (const { port } of nodes) await until(async () => (await ping(port)) === 'PONG');
  const created = spawnSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    { encoding: 'utf8' },
  );
  if (created.status !== 0) throw new Error(`cluster create failed: ${created.stdout}${created.stderr}`);
  for (const { port } of nodes) {
    await until(async () => {
      const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        return /cluster_state:ok/.test(await client.cluster('INFO'));
      } finally {
        client.disconnect();
      }
    });
  }
}

async function ping(port: number): Promise<string | undefined> {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.ping();
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function until(ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if (await ok()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('the test cluster did not come up');
    await delay(50);
  }
}

/** Number of keys each master holds. */
async function keysPerNode(): Promise<number[]> {
  return Promise.all(
    nodes.map(async ({ port }) => {
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
    nodes.map(async ({ port }) => {
      const client = new Redis(port, '127.0.0.1');
      try {
        await client.flushall(); // throwaway servers of this file only
      } finally {
        client.disconnect();
      }
    }),
  );
}

const clusterNodes = () => nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
let n = 0;
let current = '';

describe.runIf(canRun)('redis store on a Redis Cluster', () => {
  beforeAll(startCluster, 60_000);
  afterAll(() => {
    for (const node of nodes) node.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
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
