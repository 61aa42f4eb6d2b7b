import { afterEach, describe, expect, it } from 'vitest';
import type { KeywardCore } from '../core.js';
import { isKeywardError } from '../errors.js';
import { createSecretService, SECRETS_REWRAP_TARGET } from '../secrets/service.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { makeCore } from './__fixtures__/core.js';
import { createDataCipher } from './cipher.js';
import { createRewrapJob, jsonField, type RewrapProgress } from './rewrap.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup(count: number, store: Store = createMemoryStore()) {
  const t = await makeCore({ store });
  cores.push(t.core);
  const secrets = createSecretService(t.core);
  for (let i = 0; i < count; i++) await secrets.put(`owner${i % 3}`, `name-${i}`, `value-${i}`);
  const oldKid = t.core.keys.snapshot().dataKey().kid;
  const { kid: newKid } = await t.core.keys.rotate({ use: 'data' });
  return { ...t, store, secrets, oldKid, newKid, cipher: createDataCipher(t.core) };
}

async function allValues(store: Store): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.scan('secret:', { limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const e of page.entries) out.push((JSON.parse(e.value) as { value: string }).value);
    cursor = page.cursor ?? undefined;
  } while (cursor);
  return out;
}

describe('createRewrapJob', () => {
  it('re-encrypts every ciphertext under the active key in batches, with progress and audit', async () => {
    const { core, store, secrets, events, cipher, oldKid, newKid } = await setup(50);
    const progress: RewrapProgress[] = [];
    const retired: string[] = [];
    const job = createRewrapJob(core, {
      ...SECRETS_REWRAP_TARGET,
      batchSize: 7,
      settleMs: 0,
      onProgress: (p) => progress.push(p),
      retire: async (kid) => void retired.push(kid),
    });
    const result = await job.run();
    expect(result).toMatchObject({
      scanned: 50,
      rewrapped: 50,
      remainingByKid: {},
      resumed: false,
      activeKid: newKid,
    });
    expect(result.retired).toEqual([oldKid]);
    expect(retired).toEqual([oldKid]);
    expect(progress.filter((p) => !p.done).length).toBeGreaterThanOrEqual(8);
    expect(progress.at(-1)).toMatchObject({ done: true, scanned: 50 });
    const values = await allValues(store);
    expect(values.every((v) => cipher.isCurrent(v))).toBe(true);
    for (let i = 0; i < 50; i++) expect(await secrets.get(`owner${i % 3}`, `name-${i}`)).toBe(`value-${i}`);
    const audit = events.filter((e) => e.type === 'secret.rewrapped');
    expect(audit.reduce((n, e) => n + (e.type === 'secret.rewrapped' ? e.count : 0), 0)).toBe(50);
    expect(
      audit.every((e) => e.type === 'secret.rewrapped' && e.fromKid === oldKid && e.kid === newKid),
    ).toBe(true);
    expect(JSON.stringify(events)).not.toContain('value-1');
    // A second pass finds nothing to do.
    expect(await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET, settleMs: 0 }).run()).toMatchObject({
      scanned: 50,
      rewrapped: 0,
    });
  });

  it('retires nothing until the old key has been retiring for settleMs before the pass began', async () => {
    const { core, clock, oldKid } = await setup(3);
    const retire = async () => undefined;
    const early = await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET, retire, settleMs: 60_000 }).run();
    expect(early.retired).toEqual([]);
    clock.now += 60_000;
    const later = await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET, retire, settleMs: 60_000 }).run();
    expect(later.retired).toEqual([oldKid]);
  });

  it('by default retires through the keyring: the old key ends retired and leaves the snapshot', async () => {
    const { core, oldKid, cipher } = await setup(2);
    const stale = cipher.encrypt('x');
    const result = await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET, settleMs: 0 }).run();
    expect(result.retired).toEqual([oldKid]);
    expect(core.keys.snapshot().record(oldKid)?.state).toBe('retired');
    expect(core.keys.snapshot().dataKeyById(oldKid)).toBeUndefined();
    expect(cipher.decryptString(stale)).toBe('x');
  });

  it('counts unreadable ciphertexts as remaining and then does not retire their key', async () => {
    const { core, store, oldKid } = await setup(2);
    const record = JSON.parse((await store.get('secret:owner0/name-0'))!) as { value: string };
    await store.set(
      'secret:owner0/broken',
      JSON.stringify({ ...record, value: `${record.value.slice(0, -8)}AAAAAAA=` }),
    );
    await store.set(
      'secret:owner0/gone',
      JSON.stringify({ ...record, value: `deleted-kid:${record.value.split(':')[1]}` }),
    );
    const retired: string[] = [];
    const result = await createRewrapJob(core, {
      ...SECRETS_REWRAP_TARGET,
      settleMs: 0,
      retire: async (kid) => void retired.push(kid),
    }).run();
    expect(result.rewrapped).toBe(2);
    expect(result.remainingByKid).toEqual({ [oldKid]: 1, 'deleted-kid': 1 });
    expect(retired).toEqual([]);
  });

  it('never overwrites a value written concurrently (compare-and-set per record)', async () => {
    const { core, store, secrets } = await setup(5);
    let raced = false;
    const racingStore: Store = Object.create(store, {
      compareAndSet: {
        value: async (key: string, expected: string | null, value: string) => {
          if (!raced && key === 'secret:owner1/name-1') {
            raced = true;
            await secrets.put('owner1', 'name-1', 'written-during-rewrap');
          }
          return store.compareAndSet(key, expected, value);
        },
      },
    });
    const result = await createRewrapJob(
      { ...core, store: racingStore },
      { ...SECRETS_REWRAP_TARGET, settleMs: 0 },
    ).run();
    expect(raced).toBe(true);
    expect(result.rewrapped).toBe(4);
    expect(await secrets.get('owner1', 'name-1')).toBe('written-during-rewrap');
  });

  it('refuses to run twice at once: lock_not_acquired', async () => {
    const { core, store } = await setup(1);
    const lock = await store.acquireLock('rewrap:data', 10_000);
    const err = await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET })
      .run()
      .catch((e: unknown) => e);
    expect(isKeywardError(err, 'lock_not_acquired')).toBe(true);
    await lock?.release();
  });

  it('validates options at construction with config_invalid', async () => {
    const { core } = await setup(0);
    for (const bad of [
      { prefixes: [] },
      { prefixes: [''] },
      { prefixes: ['secret:'], batchSize: 0 },
      { prefixes: ['secret:'], batchSize: 1.5 },
      { prefixes: ['secret:'], jobId: 'a b' },
      { prefixes: ['secret:'], extract: 'value' },
      { prefixes: ['secret:'], lockTtlMs: 10 },
    ]) {
      expect(() => createRewrapJob(core, bad as never)).toThrowError(
        expect.objectContaining({ code: 'config_invalid' }),
      );
    }
  });

  it('jsonField replaces only the named field', () => {
    const field = jsonField('value');
    expect(field.extract!('{"value":"a:b","other":1}', 'k')).toBe('a:b');
    expect(field.extract!('not json', 'k')).toBeUndefined();
    expect(field.extract!('{"value":3}', 'k')).toBeUndefined();
    expect(JSON.parse(field.inject!('{"value":"a:b","other":1}', 'c:d', 'k'))).toEqual({
      value: 'c:d',
      other: 1,
    });
  });
});
