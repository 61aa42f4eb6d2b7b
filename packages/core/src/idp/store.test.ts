import { afterEach, describe, expect, it } from 'vitest';
import type { KeywardCore } from '../core.js';
import { makeCore } from '../data/__fixtures__/core.js';
import { createDataCipher } from '../data/cipher.js';
import { isKeywardError } from '../errors.js';
import { createMemoryStore } from '../store/memory.js';
import { createIdpTokenStore, type IdpRefreshInput } from './store.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup() {
  const t = await makeCore({ store: createMemoryStore() });
  cores.push(t.core);
  const calls: IdpRefreshInput[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const refresh = async (input: IdpRefreshInput) => {
    calls.push(input);
    await gate;
    return {
      accessToken: `at-${calls.length + 1}`,
      refreshToken: `rt-${calls.length + 1}`,
      expiresAt: t.clock.now + 3_600_000,
    };
  };
  const idp = createIdpTokenStore(t.core, { refresh, pollIntervalMs: 1 });
  return { ...t, idp, calls, release, refresh };
}

describe('createIdpTokenStore', () => {
  it('returns a fresh token without refreshing, and nothing for an unknown subject', async () => {
    const { idp, calls, clock } = await setup();
    await idp.save({
      sub: 'u',
      provider: 'github',
      accessToken: 'at-1',
      refreshToken: 'rt-1',
      expiresAt: clock.now + 3_600_000,
    });
    expect(await idp.get('u', 'github')).toBe('at-1');
    expect(await idp.get('u', 'google')).toBeUndefined();
    expect(calls).toHaveLength(0);
  });

  it('refreshes a token about to expire, once, for concurrent callers of several instances', async () => {
    const { core, idp, calls, release, refresh, clock } = await setup();
    const other = createIdpTokenStore(core, { refresh, pollIntervalMs: 1 });
    await idp.save({
      sub: 'u',
      provider: 'github',
      accessToken: 'at-1',
      refreshToken: 'rt-1',
      expiresAt: clock.now + 30_000,
    });
    const pending = [
      ...Array.from({ length: 10 }, () => idp.get('u', 'github')),
      ...Array.from({ length: 10 }, () => other.get('u', 'github')),
    ];
    await new Promise((r) => setImmediate(r));
    release();
    expect(new Set(await Promise.all(pending))).toEqual(new Set(['at-2']));
    expect(calls).toEqual([{ sub: 'u', provider: 'github', refreshToken: 'rt-1' }]);
    // The rotated refresh token is kept for the next refresh.
    clock.now += 3_600_000;
    expect(await other.get('u', 'github')).toBe('at-3');
    expect(calls[1]?.refreshToken).toBe('rt-2');
  });

  it('keeps tokens encrypted at rest under the data key', async () => {
    const { core, idp, clock } = await setup();
    await idp.save({
      sub: 'u',
      provider: 'gh',
      accessToken: 'plain-access',
      refreshToken: 'plain-refresh',
      expiresAt: clock.now + 1e6,
    });
    const raw = (await core.store.get('idp:u:gh'))!;
    expect(raw).not.toContain('plain-access');
    expect(raw).not.toContain('plain-refresh');
    expect(createDataCipher(core).kidOf((JSON.parse(raw) as { value: string }).value)).toBe(
      core.keys.snapshot().dataKey().kid,
    );
  });

  it('without a refresh token: the token until it expires, then undefined', async () => {
    const { idp, calls, clock } = await setup();
    await idp.save({ sub: 'u', provider: 'gh', accessToken: 'at-only', expiresAt: clock.now + 10_000 });
    expect(await idp.get('u', 'gh')).toBe('at-only');
    clock.now += 10_000;
    expect(await idp.get('u', 'gh')).toBeUndefined();
    expect(calls).toHaveLength(0);
  });

  it('wraps a failing refresh in idp_refresh_failed without the refresh token, and lets the next call retry', async () => {
    const t = await makeCore();
    cores.push(t.core);
    let fail = true;
    const idp = createIdpTokenStore(t.core, {
      refresh: async () => {
        if (fail) throw new Error('invalid_grant');
        return { accessToken: 'at-ok', expiresAt: t.clock.now + 3_600_000 };
      },
    });
    await idp.save({
      sub: 'u',
      provider: 'gh',
      accessToken: 'at-1',
      refreshToken: 'rt-secret-value',
      expiresAt: t.clock.now,
    });
    const err = await idp.get('u', 'gh').catch((e: unknown) => e);
    expect(isKeywardError(err, 'idp_refresh_failed')).toBe(true);
    expect((err as Error).message).not.toContain('rt-secret-value');
    expect(((err as Error).cause as Error).message).toBe('invalid_grant');
    fail = false;
    expect(await idp.get('u', 'gh')).toBe('at-ok');
  });

  it('rejects a malformed refresh result and bad save input', async () => {
    const t = await makeCore();
    cores.push(t.core);
    const idp = createIdpTokenStore(t.core, { refresh: async () => ({ accessToken: '', expiresAt: 1 }) });
    await idp.save({ sub: 'u', provider: 'gh', accessToken: 'a', refreshToken: 'r', expiresAt: t.clock.now });
    expect(isKeywardError(await idp.get('u', 'gh').catch((e: unknown) => e), 'idp_refresh_failed')).toBe(
      true,
    );
    for (const bad of [
      { sub: '', provider: 'gh', accessToken: 'a', expiresAt: 1 },
      { sub: 'u', provider: 'gh', accessToken: 'a', expiresAt: Number.NaN },
      { sub: 'u', provider: 'gh', accessToken: 7, expiresAt: 1 },
      { sub: 'u', provider: 'gh', accessToken: 'a', refreshToken: '', expiresAt: 1 },
      // regression #11: a lone surrogate is a KeywardError, not encodeURIComponent's raw URIError
      { sub: 'u\ud800', provider: 'gh', accessToken: 'a', expiresAt: 1 },
      { sub: 'u', provider: '\udfffgh', accessToken: 'a', expiresAt: 1 },
    ])
      expect(isKeywardError(await idp.save(bad as never).catch((e: unknown) => e), 'invalid_argument')).toBe(
        true,
      );
    expect(() => createIdpTokenStore(t.core, {} as never)).toThrowError(
      expect.objectContaining({ code: 'config_invalid' }),
    );
  });

  it('gives up with lock_not_acquired when another holder never finishes', async () => {
    const t = await makeCore();
    cores.push(t.core);
    const idp = createIdpTokenStore(t.core, {
      refresh: async () => ({ accessToken: 'x', expiresAt: 0 }),
      waitTimeoutMs: 30,
      pollIntervalMs: 5,
    });
    await idp.save({ sub: 'u', provider: 'gh', accessToken: 'a', refreshToken: 'r', expiresAt: t.clock.now });
    const held = await t.core.store.acquireLock('idp-refresh:idp:u:gh', 60_000);
    expect(isKeywardError(await idp.get('u', 'gh').catch((e: unknown) => e), 'lock_not_acquired')).toBe(true);
    await held?.release();
  });
});
