import { afterAll, afterEach, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import type { HealthReport } from '../../src/health/types.js';
import { MasterKey } from '../../src/keys/master-key.js';
import type { InstanceState, InstancesReport } from '../../src/sync/instances.js';
import { type App, eventually, startApp } from './harness.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const filePrefix = uniquePrefix('mp-instances');
const OLD = MasterKey.generate().exportText();
const NEW = MasterKey.generate().exportText();
const BEAT_MS = 1000;
let n = 0;
const apps: App[] = [];
const prefixes: string[] = [];

function newPrefix(): string {
  const prefix = `${filePrefix}${++n}:`;
  prefixes.push(prefix);
  return prefix;
}

async function start(env: Record<string, string>): Promise<App> {
  const app = await startApp({
    REDIS_URL: url,
    KW_SYNC_MS: '300',
    KW_HEARTBEAT_MS: String(BEAT_MS),
    KW_MASTER: OLD,
    ...env,
  });
  apps.push(app);
  return app;
}

const states = async (app: App): Promise<Record<string, InstanceState>> => {
  const report = await app.call<InstancesReport>('instances');
  return Object.fromEntries(report.instances.map((i) => [i.id, i.state]));
};

describeWithRedis('instances across processes on one Redis', () => {
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    for (const prefix of prefixes) await dropRedisPrefix(url, prefix);
  });

  it('three processes register; one killed shows stale, then drops out by itself', async () => {
    const env = { KW_PREFIX: newPrefix() };
    const a = await start(env);
    const [b, c] = await Promise.all([start(env), start(env)]);
    const [ida, idb, idc] = await Promise.all([a, b, c].map((x) => x.call<string>('instanceId')));
    expect(new Set([ida, idb, idc]).size).toBe(3);
    const listed = await b!.call<InstancesReport>('instances');
    expect(listed.instances.map((i) => i.id).sort()).toEqual([ida, idb, idc].sort());
    expect(new Set(listed.instances.map((i) => i.pid))).toEqual(new Set([a, b, c].map((x) => x!.child.pid)));
    expect(listed.counts).toEqual({ current: 3, behind: 0, stale: 0 });

    await c!.kill();
    // The killed one's record stays until its TTL: first stale, then gone; the others stay current.
    const seen: string[] = [];
    await eventually(async () => {
      const s = await a.call<InstancesReport>('instances');
      const mine = s.instances.find((i) => i.id === idc);
      const label = mine?.state ?? 'gone';
      if (seen.at(-1) !== label) seen.push(label);
      return label === 'gone';
    }, 20_000);
    expect(seen).toEqual(['current', 'stale', 'gone']);
    expect(await states(a)).toEqual({ [ida!]: 'current', [idb!]: 'current' });
  });

  it('an instance that cannot open the re-sealed keyring is shown behind after a rotation; health warns, never fails', async () => {
    const env = { KW_PREFIX: newPrefix() };
    // The straggler holds only the old master key; the others the new one, the old as previous.
    const straggler = await start({ ...env, KW_MASTER: OLD });
    const [a, b] = await Promise.all([
      start({ ...env, KW_MASTER: NEW, KW_MASTER_PREVIOUS: OLD }),
      start({ ...env, KW_MASTER: NEW, KW_MASTER_PREVIOUS: OLD }),
    ]);
    const [ida, idb, ids] = await Promise.all([a!, b!, straggler].map((x) => x.call<string>('instanceId')));
    const { generation: before } = await straggler.call<{ generation: number }>('status');

    await a!.call('rekey');
    const { generation } = await a!.call<{ generation: number }>('rotate');
    expect(generation).toBeGreaterThan(before);
    await eventually(async () => (await b!.call<{ generation: number }>('status')).generation === generation);

    await eventually(async () => {
      const s = await a!.call<InstancesReport>('instances');
      return s.instances.find((i) => i.id === idb)?.keyringGeneration === generation;
    });
    const report = await a!.call<InstancesReport>('instances');
    expect(report.generation).toBe(generation);
    expect(Object.fromEntries(report.instances.map((i) => [i.id, i.state]))).toEqual({
      [ida!]: 'current',
      [idb!]: 'current',
      [ids!]: 'behind',
    });
    expect(report.instances.find((i) => i.id === ids)?.keyringGeneration).toBe(before);

    const health = await a!.call<HealthReport>('health');
    expect(health.checks.instances?.[0]).toMatchObject({ status: 'warn', observedValue: 3 });
    expect(health.checks.instances?.[0]?.output).toContain(`1 behind keyring generation ${generation}`);
    expect(health.status).toBe('warn');
  });
});
