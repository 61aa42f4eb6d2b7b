import { afterEach, describe, expect, it } from 'vitest';
import type { KeywardCore } from '../core.js';
import { makeCore } from '../data/__fixtures__/core.js';
import { createDataCipher } from '../data/cipher.js';
import { createRewrapJob } from '../data/rewrap.js';
import { isKeywardError } from '../errors.js';
import { secretKey } from '../secrets/record.js';
import { createSecretService, SECRETS_REWRAP_TARGET } from '../secrets/service.js';
import { createMemoryStore } from '../store/memory.js';
import { idpKey } from './record.js';
import { createIdpTokenStore, IDP_REWRAP_TARGET } from './store.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup() {
  const t = await makeCore({ store: createMemoryStore() });
  cores.push(t.core);
  const refreshed: string[] = [];
  const idp = createIdpTokenStore(t.core, {
    refresh: async ({ refreshToken }) => {
      refreshed.push(refreshToken);
      return { accessToken: 'new-at', refreshToken: 'new-rt', expiresAt: t.clock.now + 3_600_000 };
    },
  });
  return { ...t, idp, refreshed, cipher: createDataCipher(t.core) };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('IdP token records bound to their store key', () => {
  it("regression #11: alice's IdP token record copied to admin's key is secret_context_mismatch, never alice's token", async () => {
    const { core, idp, clock, refreshed } = await setup();
    const save = (sub: string, accessToken: string, expiresAt: number) =>
      idp.save({ sub, provider: 'github', accessToken, refreshToken: `rt-of-${sub}`, expiresAt });
    await save('alice', 'alice-access-token', clock.now + 3_600_000);
    await save('admin', 'admin-access-token', clock.now + 3_600_000);
    await core.store.set(idpKey('admin', 'github'), (await core.store.get(idpKey('alice', 'github')))!);
    const err = await rejection(idp.get('admin', 'github'));
    expect(isKeywardError(err, 'secret_context_mismatch')).toBe(true);
    expect((err as Error).message).not.toContain('alice-access-token');
    // An expiring copy is refused before its refresh token reaches the refresh function.
    await save('alice', 'alice-access-token', clock.now + 1000);
    await core.store.set(idpKey('admin', 'github'), (await core.store.get(idpKey('alice', 'github')))!);
    expect(isKeywardError(await rejection(idp.get('admin', 'github')), 'secret_context_mismatch')).toBe(true);
    expect(refreshed).toEqual([]);
  });

  it('regression #11: a legacy IdP record still reads; rewrap binds it to its key, and a copy of it is then refused', async () => {
    const { core, idp, clock, cipher } = await setup();
    const legacy = {
      v: 1,
      value: cipher.encrypt(JSON.stringify({ a: 'legacy-at', r: 'legacy-rt' })),
      expiresAt: clock.now + 3_600_000,
      updatedAt: clock.now,
      version: 1,
    };
    await core.store.set(idpKey('alice', 'github'), JSON.stringify(legacy));
    expect(await idp.get('alice', 'github')).toBe('legacy-at');
    const result = await createRewrapJob(core, { ...IDP_REWRAP_TARGET }).run();
    expect(result.rewrapped).toBe(1);
    const raw = (await core.store.get(idpKey('alice', 'github')))!;
    expect(JSON.parse(raw)).toMatchObject({ v: 2, version: 1 });
    expect(await idp.get('alice', 'github')).toBe('legacy-at');
    await core.store.set(idpKey('admin', 'github'), raw);
    expect(isKeywardError(await rejection(idp.get('admin', 'github')), 'secret_context_mismatch')).toBe(true);
    expect((await createRewrapJob(core, { ...IDP_REWRAP_TARGET }).run()).rewrapped).toBe(0);
  });

  it('regression #11: one pass over both targets (as the background rewrap runs) binds legacy secrets and IdP records', async () => {
    const { core, idp, clock, cipher } = await setup();
    const secrets = createSecretService(core);
    await core.store.set(
      idpKey('alice', 'github'),
      JSON.stringify({
        v: 1,
        value: cipher.encrypt(JSON.stringify({ a: 'legacy-at' })),
        expiresAt: clock.now + 3_600_000,
        updatedAt: clock.now,
        version: 1,
      }),
    );
    await core.store.set(
      secretKey('alice', 'pat'),
      JSON.stringify({ v: 1, value: cipher.encrypt('legacy-pat'), createdAt: 0, updatedAt: 0 }),
    );
    const result = await createRewrapJob(core, { targets: [SECRETS_REWRAP_TARGET, IDP_REWRAP_TARGET] }).run();
    expect(result.rewrapped).toBe(2);
    expect(await idp.get('alice', 'github')).toBe('legacy-at');
    expect(await secrets.get('alice', 'pat')).toBe('legacy-pat');
    await core.store.set(idpKey('bob', 'github'), (await core.store.get(idpKey('alice', 'github')))!);
    await core.store.set(secretKey('bob', 'pat'), (await core.store.get(secretKey('alice', 'pat')))!);
    expect(isKeywardError(await rejection(idp.get('bob', 'github')), 'secret_context_mismatch')).toBe(true);
    expect(isKeywardError(await rejection(secrets.get('bob', 'pat')), 'secret_context_mismatch')).toBe(true);
  });
});
