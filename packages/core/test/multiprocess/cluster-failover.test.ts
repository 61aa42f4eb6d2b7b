import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../../../testing/src/redis-ha.js';
import { hasTool } from '../../../testing/src/tools.js';
import { KEYRING_KEY } from '../../src/keys/keyring-store.js';
import { runFailover } from './failover.js';
import { type App, eventually } from './harness.js';

/**
 * Three app processes on a Redis Cluster of 3 masters + 3 replicas; the master that owns the
 * keyring's slot is killed with SIGKILL and its replica takes over (see failover.ts).
 */
const canRun = hasTool('redis-server') && hasTool('redis-cli');
const PREFIX = 'kwcluster:';
let topology: TestCluster | undefined;
let apps: App[] = [];

/** The Redis key of the keyring document (the driver's layout: `<prefix>k:{<collection>}<id>`). */
function keyringRedisKey(): string {
  const slash = KEYRING_KEY.lastIndexOf('/');
  return `${PREFIX}k:{${KEYRING_KEY.slice(0, slash + 1)}}${KEYRING_KEY.slice(slash + 1)}`;
}

describe.runIf(canRun)('several processes on a Redis Cluster with replicas', () => {
  afterEach(async () => {
    await Promise.all(apps.map((a) => a.close()));
  });
  afterAll(async () => {
    await topology?.stop();
  });

  it('keeps verifying through the failover of the keyring master, fails writes fast, syncs again after it', async () => {
    // A node timeout of 3 s: the failover cannot finish within the 1 s store timeout of the apps.
    const t = await startCluster(3, 1, 3000);
    topology = t;
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
