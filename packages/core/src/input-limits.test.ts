// keyward issue #11 ("Token policy"): input limits in the core services, not only in the HTTP routes.
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKeyService } from './apikeys/service.js';
import { createKeywardCore, type KeywardCore } from './core.js';
import { makeCore } from './data/__fixtures__/core.js';
import { isKeywardError, KeywardError } from './errors.js';
import { MasterKey } from './keys/master-key.js';
import { createSecretService } from './secrets/service.js';
import { createMemoryStore } from './store/memory.js';
import type { Store } from './store/types.js';
import { createTokenService } from './tokens/service.js';

const MASTER = MasterKey.generate().exportText();
const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function core(store: Store = createMemoryStore()): Promise<KeywardCore> {
  const c = await createKeywardCore({ store, masterKey: MASTER, logger: false, syncIntervalMs: 60_000 });
  cores.push(c);
  return c;
}

/** The rejection of `fn`, which must be a KeywardError (a raw URIError or TypeError fails the test). */
async function rejection(fn: () => Promise<unknown>): Promise<KeywardError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof KeywardError) return err;
    throw new Error(`not a KeywardError: ${String(err)}`);
  }
  throw new Error('accepted');
}

const LONE_HIGH = 'user\uD800';
const LONE_LOW = 'user\uDC00x';

describe('regression #11: tokens.issue refuses custom claims over 8 KiB', () => {
  it('regression #11: a 5 MB custom claim is invalid_request, and nothing is stored', async () => {
    const store = createMemoryStore();
    const tokens = createTokenService(await core(store));
    const before = (await store.scan('', { limit: 10_000 })).entries.length;
    const err = await rejection(() => tokens.issue({ sub: 'u1', claims: { blob: 'x'.repeat(5_000_000) } }));
    expect(err.code).toBe('invalid_request');
    expect(err.details).toMatchObject({ field: 'claims', limit: 8192 });
    expect(err.message).not.toContain('xxxxxxxx');
    expect((await store.scan('', { limit: 10_000 })).entries.length).toBe(before);
  });

  it('regression #11: the limit is 8192 bytes of serialized UTF-8 JSON, inclusive', async () => {
    const tokens = createTokenService(await core());
    const overhead = JSON.stringify({ pad: '' }).length;
    const fits = { pad: 'a'.repeat(8192 - overhead) };
    expect(Buffer.byteLength(JSON.stringify(fits))).toBe(8192);
    expect((await tokens.issue({ sub: 'u1', claims: fits })).access_token).toMatch(/\./);
    // Multi-byte characters count by their UTF-8 bytes, not by UTF-16 length.
    const wide = { pad: 'é'.repeat((8192 - overhead) / 2 + 1) };
    expect((await rejection(() => tokens.issue({ sub: 'u1', claims: wide }))).code).toBe('invalid_request');
  });

  it('regression #11: claims nested deeper than the verifier accepts are refused at issue', async () => {
    const tokens = createTokenService(await core());
    let deep: unknown = 1;
    for (let i = 0; i < 32; i++) deep = { d: deep };
    const err = await rejection(() => tokens.issue({ sub: 'u1', claims: { deep } }));
    expect(err.code).toBe('invalid_request');
    let ok: unknown = 1;
    for (let i = 0; i < 30; i++) ok = { d: ok };
    const pair = await tokens.issue({ sub: 'u1', claims: { ok } });
    expect(cores[0]!.jwt.verify(pair.access_token).payload.ok).toEqual(ok);
  });

  it('a claim that cannot be serialized is invalid_request, not a raw TypeError', async () => {
    const tokens = createTokenService(await core());
    expect((await rejection(() => tokens.issue({ sub: 'u1', claims: { n: 1n } }))).code).toBe(
      'invalid_request',
    );
  });
});

describe('regression #11: apiKeys.create rejects a non-finite or over-maximum expiresInSec in core', () => {
  it.each([1e308, Number.POSITIVE_INFINITY, Number.NaN, 10 * 365 * 86_400 + 1, 0, -1, '60'])(
    'regression #11: expiresInSec %s is invalid_argument',
    async (expiresInSec) => {
      const store = createMemoryStore();
      const apiKeys = await createApiKeyService(await core(store));
      const err = await rejection(() =>
        apiKeys.create({ owner: 'u1', name: 'ci', expiresInSec: expiresInSec as number }),
      );
      expect(err.code).toBe('invalid_argument');
      expect(err.details).toMatchObject({ option: 'expiresInSec' });
      expect(await apiKeys.list('u1')).toEqual([]);
    },
  );

  it('ten years is accepted and expires', async () => {
    const apiKeys = await createApiKeyService(await core());
    const created = await apiKeys.create({ owner: 'u1', name: 'ci', expiresInSec: 10 * 365 * 86_400 });
    const [info] = await apiKeys.list('u1');
    expect(info?.id).toBe(created.id);
    expect(info?.expiresAt).toBe(info!.createdAt + 10 * 365 * 86_400 * 1000);
  });
});

describe('regression #11: lone surrogates in owners and names are a KeywardError, not a raw URIError', () => {
  it.each([
    ['owner', LONE_HIGH, 'ci'],
    ['owner', LONE_LOW, 'ci'],
    ['name', 'u1', LONE_HIGH],
  ])(
    'regression #11: apiKeys.create with a lone surrogate in the %s is invalid_argument',
    async (option, owner, name) => {
      const apiKeys = await createApiKeyService(await core());
      const err = await rejection(() => apiKeys.create({ owner, name }));
      expect(err.code).toBe('invalid_argument');
      expect(err.details).toMatchObject({ option });
      expect((await rejection(() => apiKeys.list(LONE_HIGH))).code).toBe('invalid_argument');
    },
  );

  it('regression #11: two owners differing only in a lone surrogate can no longer share an index', async () => {
    const apiKeys = await createApiKeyService(await core());
    // Buffer.from turns both into U+FFFD: without the check they had the same owner collection.
    await apiKeys.create({ owner: 'user\uFFFD', name: 'ci' });
    expect((await rejection(() => apiKeys.create({ owner: LONE_HIGH, name: 'ci' }))).code).toBe(
      'invalid_argument',
    );
    expect(await apiKeys.list('user\uFFFD')).toHaveLength(1);
  });

  it('paired surrogates (emoji) are fine', async () => {
    const apiKeys = await createApiKeyService(await core());
    await apiKeys.create({ owner: 'user😀', name: 'ci 🔑' });
    expect((await apiKeys.list('user😀'))[0]?.name).toBe('ci 🔑');
  });

  it.each([
    ['put owner', (s: ReturnType<typeof createSecretService>) => s.put(LONE_HIGH, 'github', 'v')],
    ['put name', (s: ReturnType<typeof createSecretService>) => s.put('u1', LONE_LOW, 'v')],
    ['get', (s: ReturnType<typeof createSecretService>) => s.get('u1', LONE_HIGH)],
    ['list', (s: ReturnType<typeof createSecretService>) => s.list(LONE_LOW)],
    ['delete', (s: ReturnType<typeof createSecretService>) => s.delete(LONE_HIGH, 'github')],
  ])('regression #11: secrets %s with a lone surrogate is invalid_argument', async (_name, call) => {
    const t = await makeCore({ store: createMemoryStore() });
    cores.push(t.core);
    const secrets = createSecretService(t.core);
    const err = await rejection(() => call(secrets));
    expect(isKeywardError(err, 'invalid_argument')).toBe(true);
    await secrets.put('u1', 'emoji 😀', 'v');
    expect(await secrets.get('u1', 'emoji 😀')).toBe('v');
  });
});
