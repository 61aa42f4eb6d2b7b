/**
 * Revoking a data key across processes, on a shared sqlite file and on a real Redis: records stay
 * readable on every instance during the rewrap, the rewrap finishes (also after its process was
 * killed mid-run: another instance resumes it), the key's material leaves the stored keyring.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import type { DataKeyRewrapStatus } from '../../src/data/compromise.js';
import type { HealthReport } from '../../src/health/types.js';
import { KEYRING_KEY, type KeyringDocument } from '../../src/keys/keyring-store.js';
import { MasterKey } from '../../src/keys/master-key.js';
import type { KeyRecord } from '../../src/keys/types.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { type App, eventually, startApp } from './harness.js';

const APP = fileURLToPath(new URL('./datakey-app.ts', import.meta.url));
const MASTER = MasterKey.generate().exportText();
const COUNT = 60;
const LOCK_TTL_MS = 1500;
const dir = mkdtempSync(join(tmpdir(), 'kw-datakey-mp-'));
const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const filePrefix = uniquePrefix('datakey');
const prefixes: string[] = [];
const apps: App[] = [];
let n = 0;

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const prefix of prefixes) await dropRedisPrefix(url, prefix);
});

interface Backend {
  /** Env for the app processes of one test. */
  env(): Record<string, string>;
  /** The same store, opened by the test process (to look at the stored keyring document). */
  open(env: Record<string, string>): Store;
}

const sqlite: Backend = {
  env: () => ({ KW_SQLITE: join(dir, `t${++n}.db`) }),
  open: (env) => createSqliteStore({ path: env.KW_SQLITE! }),
};
const redis: Backend = {
  env: () => {
    const prefix = `{${filePrefix}${++n}}:`;
    prefixes.push(prefix);
    return { REDIS_URL: url, KW_PREFIX: prefix };
  },
  open: (env) => createRedisStore({ url, prefix: env.KW_PREFIX! }),
};

const common = {
  KW_MASTER: MASTER,
  KW_SYNC_MS: '200',
  KW_BATCH: '10',
  KW_SETTLE_MS: '300',
  KW_LOCK_TTL_MS: String(LOCK_TTL_MS),
  KW_CHECK_MS: '300',
};

async function start(env: Record<string, string>): Promise<App> {
  const app = await startApp({ ...common, ...env }, APP);
  apps.push(app);
  return app;
}

async function storedKey(backend: Backend, env: Record<string, string>, kid: string) {
  const store = backend.open(env);
  try {
    const doc = JSON.parse((await store.get(KEYRING_KEY))!) as KeyringDocument;
    return doc.keys.find((k) => k.kid === kid);
  } finally {
    await store.close();
  }
}

async function destroyedOn(app: App, kid: string): Promise<boolean> {
  await app.call('refresh');
  return (await app.call<KeyRecord | null>('record', { kid }))?.destroyedAt !== undefined;
}

function scenarios(backend: Backend) {
  it('reads keep working on every instance during the rewrap; then the key is destroyed and every record reads', async () => {
    const env = backend.env();
    const a = await start({ ...env, KW_GATE: '1', KW_INSTANCE: 'instance-a' });
    const b = await start({ ...env, KW_BACKGROUND: '0', KW_INSTANCE: 'instance-b' });
    await a.call('put', { count: COUNT });
    const leaked = await a.call<string>('activeDataKid');
    const sealedBefore = (await storedKey(backend, env, leaked))?.sealed;
    expect(sealedBefore).toBeTypeOf('string');

    const revoked = await a.call<{ revoked: string; replacement: string; toRewrap: number }>('revoke', {
      kid: leaked,
    });
    expect(revoked).toMatchObject({ revoked: leaked, toRewrap: COUNT });
    expect(revoked.replacement).not.toBe(leaked);

    // The rewrap on A stops after its first page of secrets, holding its lock.
    await a.waitEvent((e) => e.event === 'rewrap-paused');
    await b.call('refresh');
    expect(await b.call('readAll', { count: COUNT })).toBe(COUNT);
    expect(await a.call('readAll', { count: COUNT })).toBe(COUNT);
    const [status] = await b.call<DataKeyRewrapStatus[]>('status');
    expect(status).toMatchObject({ kid: leaked, state: 'rewrapping', toRewrap: COUNT });
    expect(status!.rewrapped).toBeGreaterThan(0);
    expect(status!.remaining).toBe(COUNT - status!.rewrapped);
    const health = await b.call<HealthReport>('health');
    expect(health.status).toBe('warn');
    expect(health.checks['data:rewrap']).toEqual([
      expect.objectContaining({ componentId: leaked, status: 'warn', observedValue: status!.remaining }),
    ]);

    await a.call('resume');
    await eventually(() => destroyedOn(b, leaked), 20_000);
    const stored = await storedKey(backend, env, leaked);
    expect(stored).toMatchObject({ kid: leaked, use: 'data', state: 'revoked' });
    expect(stored?.sealed).toBeUndefined();
    expect(stored?.destroyedAt).toBeTypeOf('number');
    expect(await b.call('readAll', { count: COUNT })).toBe(COUNT);
    expect(await a.call('readAll', { count: COUNT })).toBe(COUNT);
    const after = await b.call<HealthReport>('health');
    expect(after.checks['data:rewrap']).toBeUndefined();
    expect(await b.call<DataKeyRewrapStatus[]>('status')).toEqual([
      expect.objectContaining({ kid: leaked, state: 'destroyed', remaining: 0 }),
    ]);
  }, 90_000);

  it('a rewrap killed with SIGKILL mid-run is resumed by another instance, and the key is destroyed', async () => {
    const env = backend.env();
    const a = await start({ ...env, KW_GATE: '1', KW_INSTANCE: 'instance-a' });
    await a.call('put', { count: COUNT });
    const leaked = await a.call<string>('activeDataKid');
    await a.call('revoke', { kid: leaked });
    await a.waitEvent((e) => e.event === 'rewrap-paused');
    // B starts while A holds the lock: its attempts are refused until A's lock lapses.
    const b = await start({ ...env, KW_INSTANCE: 'instance-b' });
    const [before] = await b.call<DataKeyRewrapStatus[]>('status');
    expect(before).toMatchObject({ kid: leaked, state: 'rewrapping' });
    expect(before!.remaining).toBeGreaterThan(0);

    await a.kill();
    // Bounded wait of a few lock TTLs (plus B's check interval and the settle time).
    await eventually(() => destroyedOn(b, leaked), 10 * LOCK_TTL_MS);
    expect((await storedKey(backend, env, leaked))?.sealed).toBeUndefined();
    expect(await b.call('readAll', { count: COUNT })).toBe(COUNT);
  }, 90_000);
}

describe('data-key revocation across processes (sqlite)', () => scenarios(sqlite));
describeWithRedis('data-key revocation across processes (redis)', () => scenarios(redis));
