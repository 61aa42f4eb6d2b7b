import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { KeywardCore } from '../core.js';
import { makeCore } from '../data/__fixtures__/core.js';
import { createRewrapJob } from '../data/rewrap.js';
import { isKeywardError } from '../errors.js';
import { createMemoryStore } from '../store/memory.js';
import { createSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { createSecretService, SECRETS_REWRAP_TARGET } from './service.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-secrets-'));
const cores: KeywardCore[] = [];
const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const drivers: Array<[string, () => Store]> = [
  ['memory', () => createMemoryStore()],
  ['sqlite', () => createSqliteStore({ path: join(dir, `s-${stores.length}-${Date.now()}.db`) })],
];

describe.each(drivers)('createSecretService (%s)', (_name, makeStore) => {
  async function setup() {
    const store = makeStore();
    stores.push(store);
    const t = await makeCore({ store });
    cores.push(t.core);
    return { ...t, store, secrets: createSecretService(t.core) };
  }

  it('puts, gets, lists and deletes per owner', async () => {
    const { secrets, clock } = await setup();
    await secrets.put('user_1', 'github', 'ghp_aaa', { description: 'GitHub PAT' });
    clock.now += 1000;
    await secrets.put('user_1', 'slack', 'xoxb-bbb');
    await secrets.put('user_2', 'github', 'ghp_other');
    expect(await secrets.get('user_1', 'github')).toBe('ghp_aaa');
    expect(await secrets.get('user_2', 'github')).toBe('ghp_other');
    expect(await secrets.get('user_1', 'missing')).toBeUndefined();
    expect(await secrets.list('user_1')).toEqual([
      { name: 'github', description: 'GitHub PAT', updatedAt: clock.now - 1000 },
      { name: 'slack', updatedAt: clock.now },
    ]);
    await secrets.put('user_1', 'github', 'ghp_new');
    expect(await secrets.get('user_1', 'github')).toBe('ghp_new');
    expect(await secrets.delete('user_1', 'github')).toBe(true);
    expect(await secrets.delete('user_1', 'github')).toBe(false);
    expect(await secrets.get('user_1', 'github')).toBeUndefined();
    expect((await secrets.list('user_1')).map((s) => s.name)).toEqual(['slack']);
  });

  it('keeps owners apart even when names and owners contain `:` `%` `{}` or `*`', async () => {
    const { secrets } = await setup();
    await secrets.put('a', 'b:c', 'one');
    await secrets.put('a:b', 'c', 'two');
    await secrets.put('a*', '{x}%', 'three');
    expect(await secrets.get('a', 'b:c')).toBe('one');
    expect(await secrets.get('a:b', 'c')).toBe('two');
    expect((await secrets.list('a')).map((s) => s.name)).toEqual(['b:c']);
    expect((await secrets.list('a*')).map((s) => s.name)).toEqual(['{x}%']);
  });

  it('stores only ciphertext: the value is not in the store, errors or audit', async () => {
    const { secrets, store, events } = await setup();
    await secrets.put('user_1', 'token', 'plain-value-123');
    const page = await store.scan('secret:');
    expect(page.entries).toHaveLength(1);
    expect(page.entries[0]!.value).not.toContain('plain-value-123');
    expect(JSON.stringify(events)).not.toContain('plain-value-123');
  });

  it('reads values after a data-key rotation, and after rewrap under the new key', async () => {
    const { core, secrets, store } = await setup();
    await secrets.put('u', 'n', 'v1');
    const { kid } = await core.keys.rotate({ use: 'data' });
    expect(await secrets.get('u', 'n')).toBe('v1');
    const result = await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET }).run();
    expect(result.rewrapped).toBe(1);
    const raw = JSON.parse((await store.get('secret:u/n'))!) as { value: string; description?: string };
    expect(raw.value.startsWith(`${kid}:`)).toBe(true);
    expect(await secrets.get('u', 'n')).toBe('v1');
  });

  it('rejects bad arguments with invalid_argument, never echoing the value', async () => {
    const { secrets } = await setup();
    const bad = [
      () => secrets.put('', 'n', 'v'),
      () => secrets.put('o', '', 'v'),
      () => secrets.put('o', 'n\n', 'v'),
      () => secrets.put('o', 'x'.repeat(257), 'v'),
      () => secrets.put('o', 'n', 42 as unknown as string),
      () => secrets.put('o', 'n', 'v'.repeat(64 * 1024 + 1)),
      () => secrets.put('o', 'n', 'v', { description: 7 as unknown as string }),
      () => secrets.get('o', undefined as unknown as string),
      () => secrets.list(''),
    ];
    for (const call of bad) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isKeywardError(err, 'invalid_argument')).toBe(true);
      expect((err as Error).message).not.toContain('vvvv');
    }
  });
});
