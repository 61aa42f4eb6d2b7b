import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { createRedisStore } from '../store/redis.js';
import type { Store } from '../store/types.js';
import { countingStore, makeCore, testClock } from './__fixtures__/core.js';
import * as format from './format.js';
import { storeKeys } from './record.js';
import { createApiKeyService } from './service.js';

// Lets a test decide the id (and key) the next create() draws: "the unknown id gets created".
const forced = vi.hoisted(() => ({
  next: undefined as { id: string; secret: string; key: string } | undefined,
}));
vi.mock('./format.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('./format.js')>();
  return {
    ...original,
    generateApiKey: () => {
      const next = forced.next;
      forced.next = undefined;
      return next ?? original.generateApiKey();
    },
  };
});

const cores: KeywardCore[] = [];
const stores: Store[] = [];
afterEach(async () => {
  forced.next = undefined;
  await Promise.all(cores.splice(0).map((c) => c.close()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

/** Counts `get` calls for one API key's record, on a counting store wrapper. */
function recordReads(calls: { gets: string[] }, id: string): number {
  return calls.gets.filter((k) => k === storeKeys.record(id)).length;
}

/** A store wrapper that remembers the key of every `get`. */
function getLogging(inner: Store): { store: Store; calls: { gets: string[] } } {
  const calls = { gets: [] as string[] };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (prop === 'get') calls.gets.push(String(args[0]));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, calls };
}

describe('negative cache of unknown API-key ids', () => {
  it('100 requests with one unknown id make one store read per window', async () => {
    const clock = testClock();
    const { store, calls } = getLogging(createMemoryStore({ now: clock.now }));
    const core = await makeCore(store, { now: clock.now });
    cores.push(core);
    const apiKeys = await createApiKeyService(core);
    const unknown = format.generateApiKey();
    for (let i = 0; i < 100; i++) expect(await codeOf(apiKeys.verify(unknown.key))).toBe('api_key_invalid');
    expect(recordReads(calls, unknown.id)).toBe(1);
    clock.advance(5_001); // the 5 s default window has passed: one more read, then cached again
    for (let i = 0; i < 10; i++) expect(await codeOf(apiKeys.verify(unknown.key))).toBe('api_key_invalid');
    expect(recordReads(calls, unknown.id)).toBe(2);
  });

  it('is bounded (negativeCacheMax) and can be disabled (negativeCacheTtlMs: 0)', async () => {
    const clock = testClock();
    const { store, calls } = getLogging(createMemoryStore({ now: clock.now }));
    const core = await makeCore(store, { now: clock.now });
    cores.push(core);
    const bounded = await createApiKeyService(core, { negativeCacheMax: 2 });
    const [a, b, c] = [format.generateApiKey(), format.generateApiKey(), format.generateApiKey()];
    for (const k of [a, b, c, a]) await codeOf(bounded.verify(k.key));
    expect(recordReads(calls, a.id)).toBe(2); // pushed out by b and c, so read again
    const off = await createApiKeyService(core, { negativeCacheTtlMs: 0 });
    for (let i = 0; i < 3; i++) await codeOf(off.verify(c.key));
    expect(recordReads(calls, c.id)).toBe(1 + 3);
    await expect(createApiKeyService(core, { negativeCacheTtlMs: -1 })).rejects.toMatchObject({
      code: 'config_invalid',
    });
    const options = {
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false as const,
    };
    await expect(
      createKeyward({ ...options, audit: false, apiKeyNegativeCacheTtlMs: Number.NaN }),
    ).rejects.toMatchObject({ code: 'config_invalid' });
  });

  it('a key created on this instance verifies at once, though its id was cached as unknown', async () => {
    const clock = testClock();
    const core = await makeCore(createMemoryStore({ now: clock.now }), { now: clock.now });
    cores.push(core);
    const apiKeys = await createApiKeyService(core);
    const drawn = format.generateApiKey();
    expect(await codeOf(apiKeys.verify(drawn.key))).toBe('api_key_invalid');
    forced.next = drawn;
    const created = await apiKeys.create({ owner: 'u', name: 'n' });
    expect(created.id).toBe(drawn.id);
    expect(await apiKeys.verify(drawn.key)).toMatchObject({ id: drawn.id, owner: 'u' });
  });
});

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const prefix = `{${uniquePrefix('apikeys-neg')}}:`;

describeWithRedis('negative cache across instances on Redis', () => {
  afterAll(() => dropRedisPrefix(url, prefix));

  it('an id cached as unknown on B verifies on B at once after A creates it (B on its own connection)', async () => {
    const masterKey = MasterKey.generate().exportText();
    const storeA = createRedisStore({ url, prefix });
    const b = countingStore(createRedisStore({ url, prefix }));
    stores.push(storeA, b.store);
    const coreA = await makeCore(storeA, { masterKey });
    const coreB = await makeCore(b.store, { masterKey });
    cores.push(coreA, coreB);
    const apiA = await createApiKeyService(coreA);
    const apiB = await createApiKeyService(coreB);

    const drawn = format.generateApiKey();
    b.reset();
    for (let i = 0; i < 20; i++) expect(await codeOf(apiB.verify(drawn.key))).toBe('api_key_invalid');
    expect(b.calls.get).toBe(1); // one store read for 20 requests
    forced.next = drawn;
    expect((await apiA.create({ owner: 'u', name: 'n', scopes: ['read'] })).id).toBe(drawn.id);
    // Waits for A's announcement (not for time): B must accept long before its 5 s window ends.
    await vi.waitFor(async () => expect(await apiB.verify(drawn.key)).toMatchObject({ id: drawn.id }), {
      timeout: 2000,
      interval: 10,
    });
  });
});
