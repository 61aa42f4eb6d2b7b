import { afterEach, describe, expect, it, vi } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { AuditEvent } from '../audit/events.js';
import type { KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import type { KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { countingStore, makeCore, testClock } from './__fixtures__/core.js';
import { API_KEY_PATTERN, apiKeyChecksum } from './format.js';
import { storeKeys } from './record.js';
import { createApiKeyService } from './service.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup(options: { cacheTtlMs?: number; events?: AuditEvent[] } = {}) {
  const clock = testClock();
  const counting = countingStore(createMemoryStore({ now: clock.now }));
  const core = await makeCore(counting.store, {
    now: clock.now,
    ...(options.events ? { events: options.events } : {}),
  });
  cores.push(core);
  const apiKeys = await createApiKeyService(
    core,
    options.cacheTtlMs === undefined ? {} : { cacheTtlMs: options.cacheTtlMs },
  );
  return { core, apiKeys, clock, ...counting };
}

/** The same id with another (well-formed, correctly checksummed) secret. */
function withOtherSecret(key: string): string {
  const body = `${key.slice(0, 16)}${'Z'.repeat(32)}`;
  return body + apiKeyChecksum(body);
}

describe('createApiKeyService', () => {
  it('creates a key that verifies, and lists it without any secret', async () => {
    const { apiKeys, clock } = await setup();
    const created = await apiKeys.create({
      owner: 'user_1',
      name: 'CI',
      scopes: ['read', 'write'],
      expiresInSec: 3600,
    });
    expect(created.key).toMatch(new RegExp(`^${API_KEY_PATTERN.source}$`));
    expect(created.prefix).toBe(`kw_${created.id}`);
    expect(await apiKeys.verify(created.key)).toEqual({
      id: created.id,
      owner: 'user_1',
      scopes: ['read', 'write'],
      expiresAt: clock.now() + 3_600_000,
    });
    const listed = await apiKeys.list('user_1');
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: created.id, name: 'CI', revokedAt: null });
    expect(JSON.stringify(listed)).not.toContain(created.key.slice(16));
    expect(await apiKeys.list('user_2')).toEqual([]);
  });

  it('keeps owners apart even when one owner name is a prefix of another', async () => {
    const { apiKeys } = await setup();
    await apiKeys.create({ owner: 'a', name: 'one' });
    await apiKeys.create({ owner: 'a:b', name: 'two' });
    expect((await apiKeys.list('a')).map((k) => k.name)).toEqual(['one']);
  });

  it('rejects a one-character typo or a swap by its checksum, without touching the store', async () => {
    const { apiKeys, calls, reset } = await setup();
    const { key } = await apiKeys.create({ owner: 'u', name: 'n' });
    reset();
    for (const i of [3, 10, 16, 30, 47, 50, 53]) {
      const ch = key[i] === 'a' ? 'b' : 'a';
      expect(await codeOf(apiKeys.verify(key.slice(0, i) + ch + key.slice(i + 1)))).toBe('api_key_malformed');
    }
    const i = [...key].findIndex(
      (c, j) => j > 3 && j < 47 && c !== key[j + 1] && key[j + 1] !== '_' && c !== '_',
    );
    const swapped = `${key.slice(0, i)}${key[i + 1]}${key[i]}${key.slice(i + 2)}`;
    expect(await codeOf(apiKeys.verify(swapped))).toBe('api_key_malformed');
    expect(calls.get ?? 0).toBe(0);
  });

  it('answers api_key_invalid, with the same message, for a wrong secret and an unknown id', async () => {
    const { apiKeys } = await setup();
    const { key } = await apiKeys.create({ owner: 'u', name: 'n' });
    const wrong = await apiKeys.verify(withOtherSecret(key)).catch((e: KeywardError) => e);
    const unknownBody = `kw_${'Q'.repeat(12)}_${key.slice(16, 48)}`;
    const unknown = await apiKeys
      .verify(unknownBody + apiKeyChecksum(unknownBody))
      .catch((e: KeywardError) => e);
    expect(wrong).toMatchObject({ code: 'api_key_invalid' });
    expect(unknown).toMatchObject({ code: 'api_key_invalid', message: (wrong as Error).message });
  });

  it('expires keys by the injected clock, cached or not', async () => {
    const { apiKeys, clock } = await setup();
    const { key } = await apiKeys.create({ owner: 'u', name: 'n', expiresInSec: 60 });
    await apiKeys.verify(key);
    clock.advance(59_999);
    await apiKeys.verify(key);
    clock.advance(1);
    expect(await codeOf(apiKeys.verify(key))).toBe('api_key_expired');
  });

  it('revokes only the owner’s key, and resolves false for an unknown id', async () => {
    const { apiKeys } = await setup();
    const { id, key } = await apiKeys.create({ owner: 'u', name: 'n' });
    await apiKeys.verify(key);
    expect(await apiKeys.revoke(id, { owner: 'someone-else' })).toBe(false);
    expect(await apiKeys.revoke('nope')).toBe(false);
    expect(await apiKeys.revoke(id, { owner: 'u' })).toBe(true);
    expect(await codeOf(apiKeys.verify(key))).toBe('api_key_revoked');
    expect((await apiKeys.list('u'))[0]?.revokedAt).toBeTypeOf('number');
  });

  it('writes lastUsedAt in batches: no store write for 100 verifies, one per key at flush', async () => {
    const { apiKeys, writes, reset, store } = await setup();
    const { id, key } = await apiKeys.create({ owner: 'u', name: 'n' });
    reset();
    for (let i = 0; i < 100; i++) await apiKeys.verify(key);
    expect(writes()).toBe(0);
    await apiKeys.flushLastUsed();
    expect(writes()).toBe(1);
    expect(await store.get(storeKeys.lastUsed(id))).not.toBeNull();
    expect((await apiKeys.list('u'))[0]?.lastUsedAt).toBeTypeOf('number');
  });

  it('flushes lastUsedAt on its timer and on core.close()', async () => {
    const clock = testClock();
    const store = createMemoryStore();
    const core = await makeCore(store, { now: clock.now });
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const apiKeys = await createApiKeyService(core, { lastUsedFlushMs: 5000 });
    const a = await apiKeys.create({ owner: 'u', name: 'a' });
    await apiKeys.verify(a.key);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await store.get(storeKeys.lastUsed(a.id))).toBe(String(clock.now()));
    clock.advance(1000);
    await apiKeys.verify(a.key);
    await core.close();
    expect(await store.get(storeKeys.lastUsed(a.id))).toBe(String(clock.now()));
  });

  it('puts no key or secret in audit events or error messages', async () => {
    const events: AuditEvent[] = [];
    const { apiKeys, clock } = await setup({ events });
    const { id, key } = await apiKeys.create({ owner: 'u', name: 'n', expiresInSec: 10 });
    const secret = key.slice(16, 48);
    const errors: unknown[] = [];
    await apiKeys.verify(key);
    for (const bad of [
      `${key}x`,
      withOtherSecret(key),
      `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`,
    ]) {
      await apiKeys.verify(bad).catch((e: unknown) => errors.push(e));
    }
    clock.advance(10_000);
    await apiKeys.verify(key).catch((e: unknown) => errors.push(e));
    await apiKeys.revoke(id);
    await apiKeys.verify(key).catch((e: unknown) => errors.push(e));
    expect(errors).toHaveLength(5);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['apikey.created', 'apikey.revoked', 'access.denied']),
    );
    const text = JSON.stringify([
      events,
      errors.map((e) => [(e as Error).message, (e as KeywardError).details, String(e)]),
    ]);
    expect(text).toContain(id);
    expect(text).not.toContain(secret);
  });

  it('rehashes lazily under the new data key after a rotation', async () => {
    const { apiKeys, core, store } = await setup({ cacheTtlMs: 0 });
    const { id, key } = await apiKeys.create({ owner: 'u', name: 'n' });
    const before = JSON.parse((await store.get(storeKeys.record(id))) as string) as {
      kid: string;
      hash: string;
    };
    const rotated = await core.keys.rotate({ use: 'data' });
    const active = core.keys.snapshot().dataKey().kid;
    expect(active).not.toBe(before.kid);
    expect(rotated).toBeTruthy();
    await apiKeys.verify(key);
    const after = JSON.parse((await store.get(storeKeys.record(id))) as string) as {
      kid: string;
      hash: string;
    };
    expect(after.kid).toBe(active);
    expect(after.hash).not.toBe(before.hash);
    expect(await apiKeys.verify(key)).toMatchObject({ id });
  });

  it('rejects bad input and options with stable codes', async () => {
    const { apiKeys, core } = await setup();
    expect(await codeOf(apiKeys.create({ owner: '', name: 'n' }))).toBe('invalid_argument');
    expect(await codeOf(apiKeys.create({ owner: 'u', name: 'n', expiresInSec: -1 }))).toBe(
      'invalid_argument',
    );
    expect(await codeOf(apiKeys.verify(undefined as unknown as string))).toBe('api_key_malformed');
    expect(await codeOf(createApiKeyService(core, { lastUsedFlushMs: 0 }))).toBe('config_invalid');
  });
});

describe('revocation across instances (memory pub/sub)', () => {
  async function pair() {
    const clock = testClock();
    const counting = countingStore(createMemoryStore({ now: clock.now }));
    const masterKey = MasterKey.generate().exportText();
    const coreA = await makeCore(counting.store, { masterKey, now: clock.now });
    const coreB = await makeCore(counting.store, { masterKey, now: clock.now });
    cores.push(coreA, coreB);
    const a = await createApiKeyService(coreA);
    const b = await createApiKeyService(coreB);
    return { a, b, clock, ...counting };
  }

  it('a key revoked on A is rejected on B at once, though B had it cached', async () => {
    const { a, b, calls, reset } = await pair();
    const { id, key } = await a.create({ owner: 'u', name: 'n' });
    await b.verify(key);
    reset();
    await b.verify(key);
    expect(calls.get ?? 0).toBe(0); // served from B's cache
    await a.revoke(id);
    expect(await codeOf(b.verify(key))).toBe('api_key_revoked');
  });

  it('heals within cacheTtlMs when the revocation message is lost', async () => {
    const { a, b, clock, dropPublish } = await pair();
    const { id, key } = await a.create({ owner: 'u', name: 'n' });
    await b.verify(key);
    dropPublish.value = true;
    await a.revoke(id);
    await b.verify(key); // stale, but bounded:
    clock.advance(30_000);
    expect(await codeOf(b.verify(key))).toBe('api_key_revoked');
  });
});
