import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { isKeywardError } from '../errors.js';
import { createHealth } from '../health/health.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeywardMetrics } from '../metrics/metrics.js';
import { keywardOptionsFromEnv } from '../options.js';
import { createMemoryStore } from '../store/memory.js';
import { createRedisStore } from '../store/redis.js';
import { createSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { INSTANCES_COLLECTION, type InstanceRecord, KEYWARD_VERSION } from './instances.js';

const MASTER = MasterKey.generate().exportText();
/** Longer than any test: the timer never fires, beats are driven by `beat()` and the fake clock. */
const BEAT_MS = 60_000;

interface Target {
  store: Store;
  /** True when the store's TTLs follow the shared fake clock (memory, SQLite). */
  fakeTtl: boolean;
  cleanup(): Promise<void>;
}

const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

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

function describeInstances(driver: string, makeTarget: (now: () => number) => Target) {
  describe(`instances on ${driver}`, () => {
    const clock = { t: Date.now() };
    const now = () => clock.t;
    let target: Target;

    async function core(store: Store, extra: { metrics?: ReturnType<typeof createKeywardMetrics> } = {}) {
      const kw = await createKeywardCore({
        store,
        masterKey: MASTER,
        logger: false,
        audit: false,
        scheduler: false,
        syncIntervalMs: 60_000,
        instanceHeartbeatMs: BEAT_MS,
        now,
        ...extra,
      });
      open.push(kw);
      return kw;
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
      await target?.cleanup();
    });

    it('three cores on one store each register; a core that cannot sync shows behind after a rotation', async () => {
      target = makeTarget(now);
      const a = await core(target.store);
      const b = await core(target.store);
      const c = await core(deaf(target.store));
      const first = await a.instances.list();
      expect(first.instances.map((i) => i.id).sort()).toEqual(
        [a.instances.id, b.instances.id, c.instances.id].sort(),
      );
      expect(first.counts).toEqual({ current: 3, behind: 0, stale: 0 });
      const gen0 = a.sync.status().generation;
      expect(first.generation).toBe(gen0);
      for (const i of first.instances) {
        expect(i).toMatchObject({
          host: hostname(),
          pid: process.pid,
          version: KEYWARD_VERSION,
          keyringGeneration: gen0,
        });
        expect(i.startedAt).toBe(clock.t);
      }

      await a.keys.rotate({ use: 'sig' });
      await b.sync.refresh();
      // Applying a new generation beats at once (no explicit beat here): a synced instance never
      // shows behind until its next interval.
      const stateOf = async () =>
        Object.fromEntries((await b.instances.list()).instances.map((i) => [i.id, i.state]));
      await vi.waitFor(async () =>
        expect(await stateOf()).toEqual({
          [a.instances.id!]: 'current',
          [b.instances.id!]: 'current',
          [c.instances.id!]: 'behind',
        }),
      );
      const after = await b.instances.list();
      expect(after.generation).toBe(gen0 + 1);
      expect(after.counts).toEqual({ current: 2, behind: 1, stale: 0 });
      expect(after.instances.find((i) => i.id === c.instances.id)?.keyringGeneration).toBe(gen0);

      // Readiness warns (never fails) while another instance is behind; liveness does no listing.
      const report = await createHealth(a)();
      expect(report.checks.instances?.[0]).toMatchObject({ status: 'warn', observedValue: 3 });
      expect(report.checks.instances?.[0]?.output).toContain(`1 behind keyring generation ${gen0 + 1}`);
      expect(report.status).not.toBe('fail');
      expect((await createHealth(a)({ ready: false })).checks.instances).toBeUndefined();

      // Once it syncs, its next beat shows it current.
      await c.sync.refresh();
      await c.instances.beat();
      expect((await a.instances.list()).counts).toEqual({ current: 3, behind: 0, stale: 0 });
      expect((await createHealth(a)()).checks.instances?.[0]?.status).toBe('pass');
    });

    it('an instance that stops beating turns stale after two intervals, and drops out after three', async () => {
      target = makeTarget(now);
      const a = await core(target.store);
      const b = await core(target.store);
      const deadId = a.instances.id!;
      // `a` "dies": its record stays as last written. (Closing would delete it.)
      clock.t += 2 * BEAT_MS + 1;
      await b.instances.beat();
      const list = await b.instances.list();
      expect(Object.fromEntries(list.instances.map((i) => [i.id, i.state]))).toEqual({
        [deadId]: 'stale',
        [b.instances.id!]: 'current',
      });
      const check = (await createHealth(b)()).checks.instances?.[0];
      expect(check?.status).toBe('pass');
      expect(check?.output).toContain('1 stale');
      if (target.fakeTtl) {
        clock.t += BEAT_MS;
        await b.instances.beat();
        expect((await b.instances.list()).instances.map((i) => i.id)).toEqual([b.instances.id]);
      }
      // A clean close removes the record at once.
      await b.close();
      expect((await a.instances.list()).instances.map((i) => i.id)).not.toContain(b.instances.id);
    });

    it('the record holds no secret, and the gauge counts instances by state', async () => {
      target = makeTarget(now);
      const metrics = createKeywardMetrics();
      const a = await core(target.store, { metrics });
      await core(deaf(target.store));
      await a.keys.rotate({ use: 'sig' });
      await a.instances.beat();
      const text = await metrics.text();
      expect(text).toContain('keyward_instances{state="current"} 1');
      expect(text).toContain('keyward_instances{state="behind"} 1');
      expect(text).toContain('keyward_instances{state="stale"} 0');

      const raw = await target.store.get(`${INSTANCES_COLLECTION}${a.instances.id}`);
      expect(raw).not.toBeNull();
      const record = JSON.parse(raw!) as InstanceRecord;
      expect(Object.keys(record).sort()).toEqual(
        [
          'clockOffsetMs',
          'heartbeatMs',
          'host',
          'id',
          'keyringGeneration',
          'lastSeenAt',
          'pid',
          'revocationGeneration',
          'startedAt',
          'syncLagMs',
          'syncStale',
          'version',
        ].sort(),
      );
      expect(raw).not.toContain(MASTER);
      expect(raw).not.toContain(MasterKey.parse(MASTER).id);
    });

    it('instanceHeartbeatMs: false registers nothing; a bad value is config_invalid', async () => {
      target = makeTarget(now);
      const kw = await createKeywardCore({
        store: target.store,
        masterKey: MASTER,
        logger: false,
        audit: false,
        scheduler: false,
        instanceHeartbeatMs: false,
        now,
      });
      open.push(kw);
      expect(kw.instances.id).toBeUndefined();
      await kw.instances.beat();
      expect((await kw.instances.list()).instances).toEqual([]);
      for (const bad of [0, 50, Number.NaN, -1])
        await expect(
          createKeywardCore({
            store: target.store,
            masterKey: MASTER,
            logger: false,
            audit: false,
            instanceHeartbeatMs: bad,
          }),
        ).rejects.toSatisfy((err) => isKeywardError(err, 'config_invalid'));
    });
  });
}

describe('KEYWARD_INSTANCE_HEARTBEAT_MS', () => {
  it('sets instanceHeartbeatMs: ms or off; anything else is config_invalid', () => {
    expect(keywardOptionsFromEnv({ KEYWARD_INSTANCE_HEARTBEAT_MS: '5000' }).instanceHeartbeatMs).toBe(5000);
    expect(keywardOptionsFromEnv({ KEYWARD_INSTANCE_HEARTBEAT_MS: 'off' }).instanceHeartbeatMs).toBe(false);
    expect(keywardOptionsFromEnv({}).instanceHeartbeatMs).toBeUndefined();
    for (const bad of ['10s', '50', '-1', '1e4'])
      expect(() => keywardOptionsFromEnv({ KEYWARD_INSTANCE_HEARTBEAT_MS: bad })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      );
  });
});

describeInstances('memory', (now) => ({
  store: createMemoryStore({ now }),
  fakeTtl: true,
  async cleanup() {},
}));

describeInstances('sqlite', (now) => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-instances-'));
  const store = createSqliteStore({ path: join(dir, 'kw.db'), now });
  return {
    store,
    fakeTtl: true,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

const url = redisTestUrl();
const prefixes: string[] = [];
afterAll(async () => {
  if (url) for (const p of prefixes) await dropRedisPrefix(url, p);
});
describeWithRedis('redis', () => {
  describeInstances('redis', () => {
    const prefix = uniquePrefix('instances');
    prefixes.push(prefix);
    const store = createRedisStore({ url: url!, prefix });
    return {
      store,
      fakeTtl: false,
      async cleanup() {
        await store.close();
      },
    };
  });
});
