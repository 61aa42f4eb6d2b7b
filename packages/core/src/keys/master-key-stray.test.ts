import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dropRedisPrefix, redisTestUrl, uniquePrefix } from '../../../testing/src/redis.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { isKeywardError } from '../errors.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { loadMasterKey, MASTER_KEY_FILE, MasterKey } from './master-key.js';

const root = mkdtempSync(join(tmpdir(), 'kw-stray-master-'));
const redisUrl = redisTestUrl();
const redisPrefix = uniquePrefix('stray-master');
const saved = { key: process.env.KEYWARD_MASTER_KEY, previous: process.env.KEYWARD_MASTER_KEY_PREVIOUS };
const cores: KeywardCore[] = [];
const stores: Store[] = [];
let n = 0;
beforeEach(() => {
  // "no master key configured": nothing in the environment either
  delete process.env.KEYWARD_MASTER_KEY;
  delete process.env.KEYWARD_MASTER_KEY_PREVIOUS;
});
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
  if (saved.key !== undefined) process.env.KEYWARD_MASTER_KEY = saved.key;
  if (saved.previous !== undefined) process.env.KEYWARD_MASTER_KEY_PREVIOUS = saved.previous;
});
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  if (redisUrl) await dropRedisPrefix(redisUrl, redisPrefix);
});

const fresh = () => join(root, `d-${n++}`);
const base = {
  logger: false as const,
  scheduler: false as const,
  audit: false as const,
  syncIntervalMs: 60_000,
};

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (core) => {
      cores.push(core as KeywardCore);
      return undefined;
    },
    (err: unknown) => err,
  );
}

function expectRefused(err: unknown, keyA: MasterKey): void {
  expect(isKeywardError(err, 'master_key_mismatch'), String(err)).toBe(true);
  const message = (err as Error).message;
  expect(message).not.toContain('\n');
  expect(message).toContain(keyA.id);
  expect(message).not.toContain(keyA.exportText());
}

describe('no master key configured on a deployment sealed with an env key', () => {
  it('regression #11: a store keyring sealed by key A, no master key and a dir: master_key_mismatch, and no master.key appears (memory store)', async () => {
    const keyA = MasterKey.generate();
    const store = createMemoryStore();
    stores.push(store);
    cores.push(await createKeywardCore({ ...base, store, masterKey: keyA.exportText(), dir: fresh() }));
    await cores.pop()!.close();
    const dir = fresh();
    expectRefused(await failure(createKeywardCore({ ...base, store, dir })), keyA);
    expect(existsSync(join(dir, MASTER_KEY_FILE))).toBe(false);
    expect(existsSync(dir)).toBe(false); // nothing at all was written
  });

  it('regression #11: the same on the SQLite file of a mounted data folder: refused, no master.key next to keyward.db', async () => {
    const keyA = MasterKey.generate();
    const dir = fresh();
    cores.push(await createKeywardCore({ ...base, masterKey: keyA.exportText(), dir }));
    await cores.pop()!.close();
    const before = readdirSync(dir).sort();
    expectRefused(await failure(createKeywardCore({ ...base, dir })), keyA);
    expect(existsSync(join(dir, MASTER_KEY_FILE))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it.runIf(redisUrl !== undefined)(
    'regression #11: the same on a real Redis: refused, and the dir gets no master.key',
    async () => {
      const keyA = MasterKey.generate();
      const redis = { redisUrl: redisUrl!, redisPrefix: `${redisPrefix}${n++}:` };
      cores.push(await createKeywardCore({ ...base, ...redis, masterKey: keyA.exportText(), dir: fresh() }));
      await cores.pop()!.close();
      const dir = fresh();
      expectRefused(await failure(createKeywardCore({ ...base, ...redis, dir })), keyA);
      expect(existsSync(join(dir, MASTER_KEY_FILE))).toBe(false);
    },
  );

  it('a fresh deployment (no keyring yet) still generates a dev master.key (0600) and reuses it on restart', async () => {
    const dir = fresh();
    const first = await createKeywardCore({ ...base, dir });
    const file = join(dir, MASTER_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    await first.close();
    const second = await createKeywardCore({ ...base, dir });
    cores.push(second);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(second.keys.snapshot().signingKey()).toBeDefined();
  });

  it('loadMasterKey with deferGenerated writes nothing until commit, and commit keeps a key another process wrote first', () => {
    const dir = fresh();
    const a = loadMasterKey({ dir, env: {}, deferGenerated: true });
    const b = loadMasterKey({ dir, env: {}, deferGenerated: true });
    expect(a.source).toBe('generated');
    expect(existsSync(dir)).toBe(false);
    const winner = a.commit!();
    expect(winner.id).toBe(a.key.id);
    expect(b.commit!().id).toBe(a.key.id);
  });
});
