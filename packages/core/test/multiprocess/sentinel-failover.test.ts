import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startSentinels, type TestSentinels } from '../../../testing/src/redis-ha.js';
import { hasTool } from '../../../testing/src/tools.js';
import { runFailover } from './failover.js';
import { type App, eventually } from './harness.js';

/**
 * Three app processes on Redis Sentinel (a master, one replica, three sentinels); the master is
 * killed with SIGKILL and the sentinels promote the replica (see failover.ts for the assertions).
 */
const canRun = hasTool('redis-server') && hasTool('redis-cli');
let topology: TestSentinels | undefined;
let apps: App[] = [];

describe.runIf(canRun)('several processes on Redis Sentinel', () => {
  afterEach(async () => {
    await Promise.all(apps.map((a) => a.close()));
  });
  afterAll(async () => {
    await topology?.stop();
  });

  it('keeps verifying through a master failover, fails writes fast, and syncs again after it', async () => {
    const t = await startSentinels();
    topology = t;
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
      },
    });
  }, 90_000);
});
