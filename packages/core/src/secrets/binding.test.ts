import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dropRedisPrefix, redisTestUrl, uniquePrefix } from '../../../testing/src/redis.js';
import type { KeywardCore } from '../core.js';
import { makeCore } from '../data/__fixtures__/core.js';
import { createDataCipher } from '../data/cipher.js';
import { createRewrapJob } from '../data/rewrap.js';
import { isKeywardError } from '../errors.js';
import { toHttpProblem } from '../http/errors.js';
import { createMemoryStore } from '../store/memory.js';
import { createRedisStore } from '../store/redis.js';
import { createSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { parseSecretKey, secretKey } from './record.js';
import { createSecretService, SECRETS_REWRAP_TARGET } from './service.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-secret-binding-'));
const redisUrl = redisTestUrl();
const redisPrefix = uniquePrefix('secret-binding');
const cores: KeywardCore[] = [];
const stores: Store[] = [];
let n = 0;
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (redisUrl) await dropRedisPrefix(redisUrl, redisPrefix);
});

const drivers: Array<[string, () => Store]> = [
  ['memory', () => createMemoryStore()],
  ['sqlite', () => createSqliteStore({ path: join(dir, `b-${n++}.db`) })],
];
// A real Redis when REDIS_URL is set (KEYWARD_REQUIRE_REDIS=1 makes its absence fail the run).
if (redisUrl)
  drivers.push(['redis', () => createRedisStore({ url: redisUrl, prefix: `${redisPrefix}${n++}:` })]);

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe.each(drivers)('secrets bound to their owner and name (%s)', (_driver, makeStore) => {
  async function setup() {
    const store = makeStore();
    stores.push(store);
    const t = await makeCore({ store });
    cores.push(t.core);
    return { ...t, store, secrets: createSecretService(t.core), cipher: createDataCipher(t.core) };
  }

  /** Writes a record as keyward wrote it before the binding: `v: 1`, the bare value encrypted. */
  async function putLegacy(t: Awaited<ReturnType<typeof setup>>, owner: string, name: string, value: string) {
    const record = { v: 1, value: t.cipher.encrypt(value), createdAt: t.clock.now, updatedAt: t.clock.now };
    await t.store.set(secretKey(owner, name), JSON.stringify(record));
  }

  it("regression #11: alice's secret record copied to admin's key is secret_context_mismatch, never alice's plaintext", async () => {
    const t = await setup();
    await t.secrets.put('alice', 'github', 'alice-plaintext-123');
    await t.secrets.put('admin', 'github', 'admin-own-value');
    const copied = (await t.store.get(secretKey('alice', 'github')))!;
    await t.store.set(secretKey('admin', 'github'), copied);
    const err = await rejection(t.secrets.get('admin', 'github'));
    expect(isKeywardError(err, 'secret_context_mismatch')).toBe(true);
    expect(
      JSON.stringify({ message: (err as Error).message, details: (err as { details?: unknown }).details }),
    ).not.toContain('alice-plaintext-123');
    // A server-side integrity problem: a 500 carrying the code, never a 401 and never the value.
    const problem = toHttpProblem(err);
    expect(problem).toMatchObject({ status: 500, error: 'secret_context_mismatch' });
    expect(JSON.stringify(problem)).not.toContain('alice-plaintext-123');
    // The original is untouched.
    expect(await t.secrets.get('alice', 'github')).toBe('alice-plaintext-123');
  });

  it('regression #11: a secret record copied to another name of the same owner is secret_context_mismatch', async () => {
    const t = await setup();
    await t.secrets.put('alice', 'github', 'value-a');
    await t.store.set(secretKey('alice', 'slack'), (await t.store.get(secretKey('alice', 'github')))!);
    expect(isKeywardError(await rejection(t.secrets.get('alice', 'slack')), 'secret_context_mismatch')).toBe(
      true,
    );
  });

  it('regression #11: a value that looks like an envelope is stored inside one, so it cannot claim another owner', async () => {
    const t = await setup();
    const forged = JSON.stringify({ kw: 'secret', v: 1, owner: 'admin', name: 'x', value: 'forged' });
    await t.secrets.put('alice', 'x', forged);
    expect(await t.secrets.get('alice', 'x')).toBe(forged);
    await t.store.set(secretKey('admin', 'x'), (await t.store.get(secretKey('alice', 'x')))!);
    expect(isKeywardError(await rejection(t.secrets.get('admin', 'x')), 'secret_context_mismatch')).toBe(
      true,
    );
  });

  it('regression #11: a legacy (unbound) record still reads; rewrap binds it, it still reads, and a copy of it is then refused', async () => {
    const t = await setup();
    await putLegacy(t, 'alice', 'github', 'legacy-value');
    await putLegacy(t, 'a/b:c', '{x}%', 'odd-key-value');
    await t.secrets.put('bob', 'n', 'already-bound');
    expect(await t.secrets.get('alice', 'github')).toBe('legacy-value');
    // No data-key rotation: the legacy records are under the active key and are still migrated.
    const first = await createRewrapJob(t.core, { ...SECRETS_REWRAP_TARGET }).run();
    expect(first.rewrapped).toBe(2);
    const raw = JSON.parse((await t.store.get(secretKey('alice', 'github')))!) as { v: number };
    expect(raw.v).toBe(2);
    expect(await t.secrets.get('alice', 'github')).toBe('legacy-value');
    expect(await t.secrets.get('a/b:c', '{x}%')).toBe('odd-key-value');
    expect(await t.secrets.get('bob', 'n')).toBe('already-bound');
    // The migrated record is bound: copied to admin, it is refused.
    await t.store.set(secretKey('admin', 'github'), (await t.store.get(secretKey('alice', 'github')))!);
    expect(isKeywardError(await rejection(t.secrets.get('admin', 'github')), 'secret_context_mismatch')).toBe(
      true,
    );
    // A second pass has nothing to migrate, and leaves the copied record refused (rewrap never rebinds a bound record).
    const second = await createRewrapJob(t.core, { ...SECRETS_REWRAP_TARGET }).run();
    expect(second.rewrapped).toBe(0);
    await t.core.keys.rotate({ use: 'data' });
    const third = await createRewrapJob(t.core, { ...SECRETS_REWRAP_TARGET }).run();
    expect(third.rewrapped).toBe(4);
    expect(isKeywardError(await rejection(t.secrets.get('admin', 'github')), 'secret_context_mismatch')).toBe(
      true,
    );
    expect(await t.secrets.get('alice', 'github')).toBe('legacy-value');
  });

  it('regression #11: a legacy record under a rotated-out data key is bound and moved to the new key in one pass, and the old key retires', async () => {
    const t = await setup();
    await putLegacy(t, 'alice', 'github', 'legacy-value');
    // Unreachable by any read (the key names no owner and name): re-encrypted, never left behind.
    await t.store.set(
      'secret:no-name-here',
      JSON.stringify({ v: 1, value: t.cipher.encrypt('x'), updatedAt: 0 }),
    );
    const oldKid = t.core.keys.snapshot().dataKey().kid;
    const { kid } = await t.core.keys.rotate({ use: 'data' });
    const result = await createRewrapJob(t.core, { ...SECRETS_REWRAP_TARGET, settleMs: 0 }).run();
    expect(result).toMatchObject({ rewrapped: 2, remainingByKid: {}, retired: [oldKid] });
    const raw = JSON.parse((await t.store.get(secretKey('alice', 'github')))!) as {
      v: number;
      value: string;
    };
    expect(raw.v).toBe(2);
    expect(raw.value.startsWith(`${kid}:`)).toBe(true);
    expect(await t.secrets.get('alice', 'github')).toBe('legacy-value');
    await t.store.set(secretKey('admin', 'github'), JSON.stringify(raw));
    expect(isKeywardError(await rejection(t.secrets.get('admin', 'github')), 'secret_context_mismatch')).toBe(
      true,
    );
  });
});

describe('parseSecretKey', () => {
  it('inverts secretKey and refuses keys that are not secret keys', () => {
    for (const [owner, name] of [
      ['alice', 'github'],
      ['a/b:c', '{x}%/y'],
      ['ü', 'n n'],
    ] as const)
      expect(parseSecretKey(secretKey(owner, name))).toEqual({ owner, name });
    for (const key of [
      'secret:',
      'secret:a',
      'secret:a/',
      'secret:/n',
      'idp:a/b',
      'secret:a/b/c',
      'secret:%zz/n',
    ])
      expect(parseSecretKey(key)).toBeUndefined();
  });
});
