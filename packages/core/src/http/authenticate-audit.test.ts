import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { countingStore, makeCore, testClock } from '../apikeys/__fixtures__/core.js';
import { apiKeyChecksum, generateApiKey } from '../apikeys/format.js';
import { createApiKeyService } from '../apikeys/service.js';
import type { AuditEvent } from '../audit/events.js';
import { KeywardError } from '../errors.js';
import type { KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup() {
  const clock = testClock();
  const events: AuditEvent[] = [];
  const core = await makeCore(countingStore(createMemoryStore({ now: clock.now })).store, {
    now: clock.now,
    events,
  });
  cores.push(core);
  const apiKeys = await createApiKeyService(core);
  const auth = createAuthenticator({ jwt: core.jwt, apiKeys, audit: core.audit });
  const denied = () => events.filter((e) => e.type === 'access.denied');
  return { core, apiKeys, auth, clock, denied };
}

describe('access.denied for API keys through the authenticator', () => {
  it('one event per denied request: unknown, wrong secret, malformed, revoked, expired', async () => {
    const { apiKeys, auth, clock, denied } = await setup();
    const { key: revokedKey, id } = await apiKeys.create({ owner: 'u', name: 'n' });
    await apiKeys.revoke(id);
    const { key: expiringKey } = await apiKeys.create({ owner: 'u', name: 'n', expiresInSec: 60 });
    const { key: good } = await apiKeys.create({ owner: 'u', name: 'n' });
    const wrongBody = `${good.slice(0, 16)}${'Z'.repeat(32)}`;
    const cases: Array<[string, string]> = [
      [generateApiKey().key, 'api_key_invalid'],
      [wrongBody + apiKeyChecksum(wrongBody), 'api_key_invalid'],
      [`${good.slice(0, -8)}AAAAAAAA`, 'api_key_malformed'],
      ['kw_nope', 'api_key_malformed'],
      [revokedKey, 'api_key_revoked'],
    ];
    for (const [key, code] of cases) {
      const before = denied().length;
      expect(await codeOf(auth.authenticate({ 'x-api-key': key }))).toBe(code);
      expect(denied().slice(before)).toEqual([
        expect.objectContaining({ type: 'access.denied', code, via: 'api_key' }),
      ]);
    }
    clock.advance(61_000);
    const before = denied().length;
    expect(await codeOf(auth.authenticate({ 'x-api-key': expiringKey }))).toBe('api_key_expired');
    expect(denied().length - before).toBe(1);
    // 6 denied requests, 6 events; an accepted one adds none.
    await auth.authenticate({ 'x-api-key': good });
    expect(denied()).toHaveLength(6);
    // Each event carries the credential only as a fingerprint.
    for (const event of denied())
      expect(event).toMatchObject({ tokenFingerprint: expect.stringMatching(/^sha256:/) });
    expect(JSON.stringify(denied())).not.toContain(revokedKey);
  });

  it('a direct apiKeys.verify() is audited once too', async () => {
    const { apiKeys, denied } = await setup();
    await codeOf(apiKeys.verify('kw_nope'));
    expect(denied()).toHaveLength(1);
  });

  it('an API-key verifier that does not audit is still audited by the authenticator, once', async () => {
    const { core, denied } = await setup();
    const auth = createAuthenticator({
      jwt: core.jwt,
      apiKeys: {
        verify: async () => Promise.reject(new KeywardError('api_key_invalid', 'API key is invalid')),
      },
      audit: core.audit,
    });
    expect(await codeOf(auth.authenticate({ 'x-api-key': 'kw_anything' }))).toBe('api_key_invalid');
    expect(denied()).toEqual([expect.objectContaining({ code: 'api_key_invalid', via: 'api_key' })]);
  });

  it('a rejected bearer token is audited once', async () => {
    const { auth, denied } = await setup();
    expect(await codeOf(auth.authenticate({ authorization: 'Bearer not.a.token' }))).toBe('token_malformed');
    expect(denied()).toHaveLength(1);
  });
});
