import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createKeywardCore,
  createRedisStore,
  createSqliteStore,
  type InstancesReport,
  type KeywardCore,
  type Store,
} from '@keyward/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeWithRedis, dropRedisPrefix, redisTestUrl, uniquePrefix } from '../../testing/src/redis.js';
import { buildOnce, keyward, tempDir } from './cli.js';
import type { StoreTarget } from './key-commands.js';

const BEAT_MS = 60_000;

/** A view of `store` whose subscription never delivers: the core only learns what it polls. */
function deaf(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'subscribe') return async () => async () => undefined;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function describeInstancesCommand(name: string, makeTarget: () => StoreTarget): void {
  describe(`keyward instances (${name})`, () => {
    let target: StoreTarget;
    const cores: KeywardCore[] = [];
    const run = (args: string[]) => keyward([...target.args, ...args]);
    // One store object for every core of this process: a second SQLite connection opened in a
    // process that already holds the file open loses that process's POSIX locks (ownerOnly opens and
    // closes the file), after which another process may read a stale snapshot.
    let shared: Store;
    const openStore = (): Store => {
      const { dir, redisUrl, redisPrefix } = target.keywardOptions;
      return redisUrl
        ? createRedisStore({ url: redisUrl, ...(redisPrefix ? { prefix: redisPrefix } : {}) })
        : createSqliteStore({ path: join(dir, 'keyward.db') });
    };
    const core = async (store: Store, now: () => number = Date.now) => {
      const kw = await createKeywardCore({
        store,
        dir: target.dir,
        logger: false,
        audit: false,
        scheduler: false,
        syncIntervalMs: 60_000,
        instanceHeartbeatMs: BEAT_MS,
        now,
      });
      cores.push(kw);
      return kw;
    };

    beforeAll(async () => {
      await buildOnce();
      target = makeTarget();
      expect((await run(['init'])).code).toBe(0);
      shared = openStore();
    });
    afterEach(async () => {
      for (const kw of cores.splice(0)) await kw.close();
    });
    afterAll(async () => {
      await shared?.close();
      await target.cleanup();
    });

    it('lists every instance; flags the one behind and the stale one; --check fails until all are current', async () => {
      const empty = await run(['instances', '--check']);
      expect(empty.code).toBe(1);
      expect(empty.stderr.trim().split('\n').at(-1)).toBe(
        'keyward: no instance is registered in the store [instances_not_current]',
      );

      const a = await core(shared);
      const lagging = await core(deaf(shared));
      // An instance whose last heartbeat is older than two intervals (as if it had died then).
      const dead = await core(shared, () => Date.now() - 2 * BEAT_MS - 5_000);
      await a.keys.rotate({ use: 'sig' });
      const generation = a.sync.status().generation;
      await Promise.all([a, lagging].map((kw) => kw.instances.beat()));

      const json = await run(['instances', '--json']);
      expect(json.code, json.stderr).toBe(0);
      const report = JSON.parse(json.stdout) as InstancesReport;
      expect(report.generation).toBe(generation);
      expect(Object.fromEntries(report.instances.map((i) => [i.id, i.state]))).toEqual({
        [a.instances.id!]: 'current',
        [lagging.instances.id!]: 'behind',
        [dead.instances.id!]: 'stale',
      });
      expect(report.counts).toEqual({ current: 1, behind: 1, stale: 1 });

      const text = await run(['instances']);
      expect(text.code, text.stderr).toBe(0);
      const lines = text.stdout.trim().split('\n');
      expect(lines[0]).toBe(`keyring generation ${generation}`);
      expect(lines[1]).toMatch(
        /^ID +HOST +PID +VERSION +KEYRING +REVOCATIONS +CLOCK OFFSET +SYNC LAG +STARTED +LAST SEEN +STATE$/,
      );
      const row = (id: string | undefined) => lines.find((l) => l.startsWith(`${id} `)) ?? '';
      expect(row(a.instances.id)).toMatch(/ current$/);
      expect(row(lagging.instances.id)).toMatch(new RegExp(` ${generation - 1} .* BEHIND$`));
      expect(row(dead.instances.id)).toMatch(/ STALE$/);
      expect(text.stderr).toContain('3 instances: 1 current, 1 behind, 1 stale');
      const master = readFileSync(join(target.dir, 'master.key'), 'utf8').trim();
      expect(text.stdout + json.stdout).not.toContain(master);

      const check = await run(['instances', '--check']);
      expect(check.code).toBe(1);
      expect(check.stderr).toContain(
        `1 behind keyring generation ${generation}, 1 stale [instances_not_current]`,
      );

      await dead.close();
      await lagging.sync.refresh();
      await lagging.instances.beat();
      const ok = await run(['instances', '--check']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stderr).toContain('2 instances: 2 current, 0 behind, 0 stale');
    });
  });
}

describeInstancesCommand('embedded store', () => {
  const { dir, cleanup } = tempDir();
  return { args: ['--dir', dir], dir, keywardOptions: { dir }, cleanup };
});

describeWithRedis('redis', () => {
  describeInstancesCommand('redis', () => {
    const url = redisTestUrl()!;
    const prefix = uniquePrefix('cli-instances');
    const { dir, cleanup } = tempDir();
    return {
      args: ['--dir', dir, '--redis', url, '--redis-prefix', prefix],
      dir,
      keywardOptions: { dir, redisUrl: url, redisPrefix: prefix },
      async cleanup() {
        await dropRedisPrefix(url, prefix);
        cleanup();
      },
    };
  });
});
