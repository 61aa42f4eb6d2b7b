/**
 * Redis Sentinel and Redis Cluster: the multi-process sync suite (sync-suite.ts) on each, then the
 * failover of each. Everything on these topologies lives in this one file, so vitest runs it one
 * test after the other: each topology is started once (beforeAll) and three to ten app processes
 * run on it; on a 2-core machine two such files at once starved each other.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startCluster,
  startSentinels,
  type TestCluster,
  type TestSentinels,
  withClient,
} from '../../../testing/src/redis-ha.js';
import { hasTool } from '../../../testing/src/tools.js';
import { KEYRING_KEY } from '../../src/keys/keyring-store.js';
import { runFailover } from './failover.js';
import { type App, eventually } from './harness.js';
import { clusterDriver, sentinelDriver } from './sync-drivers.js';
import { syncSuite } from './sync-suite.js';

const canRun = hasTool('redis-server') && hasTool('redis-cli');
let apps: App[] = [];

/**
 * Three app processes on Redis Sentinel (a master, one replica, three sentinels); the master is
 * killed with SIGKILL and the sentinels promote the replica (see failover.ts for the assertions).
 */
let sentinels: TestSentinels | undefined;

/** Pub/sub connections on `port` that are not the sentinels' own (`sentinel-…` names). */
function appSubscribers(port: number): Promise<number> {
  return withClient(port, async (c) => {
    const list = String(await c.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
    return list
      .split('\n')
      .filter((l) => l.includes(' sub=') && !/ name=sentinel-/.test(l) && !/ sub=0 /.test(l)).length;
  });
}

describe.runIf(canRun)('several processes on Redis Sentinel', () => {
  beforeAll(async () => {
    sentinels = await startSentinels();
  }, 60_000);
  afterAll(async () => {
    await sentinels?.stop();
  });

  syncSuite(sentinelDriver(() => sentinels!));

  // Last: it kills the master.
  describe('failover', () => {
    afterEach(async () => {
      await Promise.all(apps.map((a) => a.close()));
    });

    it('keeps verifying through a master failover, fails writes fast, and syncs again after it', async () => {
      const t = sentinels!;
      expect(await t.currentMaster()).toBe(t.master.port);
      apps = await runFailover({
        env: { KW_REDIS_SENTINELS: t.seeds, KW_REDIS_SENTINEL_NAME: t.name, KW_PREFIX: 'kwsentinel:' },
        singlePrimary: true,
        async killPrimary() {
          const exited = new Promise((resolve) => t.master.process.once('exit', resolve));
          t.master.process.kill('SIGKILL');
          await exited;
        },
        async tookOver() {
          await eventually(async () => (await t.currentMaster()) === t.replica.port, 30_000, 100);
          // Each app's pub/sub connection follows the master on +switch-master; what is published
          // before it resubscribed is lost, and the 60 s poll would repair it only after the test
          // gave up (a race seen on a loaded machine). So: all three are on the new master.
          await eventually(async () => (await appSubscribers(t.replica.port)) >= 3, 30_000, 100);
        },
      });
    }, 90_000);
  });
});

/**
 * Three app processes on a Redis Cluster of 3 masters + 3 replicas; the master that owns the
 * keyring's slot is killed with SIGKILL and its replica takes over (see failover.ts).
 */
const PREFIX = 'kwcluster:';
let cluster: TestCluster | undefined;

/** The Redis key of the keyring document (the driver's layout: `<prefix>k:{<collection>}<id>`). */
function keyringRedisKey(): string {
  const slash = KEYRING_KEY.lastIndexOf('/');
  return `${PREFIX}k:{${KEYRING_KEY.slice(0, slash + 1)}}${KEYRING_KEY.slice(slash + 1)}`;
}

describe.runIf(canRun)('several processes on a Redis Cluster with replicas', () => {
  beforeAll(async () => {
    // A node timeout of 3 s: the failover cannot finish within the 1 s store timeout of the apps.
    cluster = await startCluster(3, 1, 3000);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  syncSuite(clusterDriver(() => cluster!));

  // Last: it kills the master of the keyring's slot.
  describe('failover', () => {
    afterEach(async () => {
      await Promise.all(apps.map((a) => a.close()));
    });

    it('keeps verifying through the failover of the keyring master, fails writes fast, syncs again after it', async () => {
      const t = cluster!;
      const slot = await t.keyslot(keyringRedisKey());
      let killed = 0;
      apps = await runFailover({
        env: { KW_REDIS_CLUSTER: t.seeds, KW_PREFIX: PREFIX },
        singlePrimary: false,
        async killPrimary() {
          // The keyring exists now: the master serving its slot is the one to kill.
          killed = await t.masterOf(slot);
          const server = killed;
          const node = t.nodes.find((n) => n.port === server)!;
          const exited = new Promise((resolve) => node.process.once('exit', resolve));
          node.process.kill('SIGKILL');
          await exited;
        },
        async tookOver() {
          await eventually(async () => (await t.masterOf(slot)) !== killed, 30_000, 100);
        },
      });
      expect(killed).toBeGreaterThan(0);
      expect(await t.masterOf(slot)).not.toBe(killed);
    }, 90_000);
  });
});
