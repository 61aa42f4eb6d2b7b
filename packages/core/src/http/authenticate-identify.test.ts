// keyward issue #15: Authenticator.identify — authenticate / optional without a promise on the hot
// path (keyward's own tokens), a promise wherever something async is involved, the same refusals.
import { afterEach, describe, expect, it } from 'vitest';
import { countingStore, makeCore, testClock } from '../apikeys/__fixtures__/core.js';
import { createApiKeyService } from '../apikeys/service.js';
import { isKeywardError } from '../errors.js';
import type { KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { type AuthenticatorOptions, createAuthenticator } from './authenticate.js';
import { toHttpProblem } from './errors.js';

const cores: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup(options: AuthenticatorOptions = {}) {
  const clock = testClock();
  const core: KeywardCore = await makeCore(countingStore(createMemoryStore({ now: clock.now })).store, {
    now: clock.now,
  });
  cores.push(core);
  const apiKeys = await createApiKeyService(core);
  const auth = createAuthenticator({ jwt: core.jwt, apiKeys, audit: core.audit }, options);
  return { core, apiKeys, auth, bearer: { authorization: `Bearer ${core.jwt.sign({ sub: 'alice' })}` } };
}

/** The error `f` throws synchronously (a returned promise is a failure of this test). */
function thrown(f: () => unknown): unknown {
  try {
    const value = f();
    return new Error(
      `returned ${value instanceof Promise ? 'a promise' : String(value)} instead of throwing`,
    );
  } catch (err) {
    return err;
  }
}

describe('Authenticator.identify', () => {
  it("returns keyward's own principal synchronously, required or optional, as authenticate does", async () => {
    const s = await setup();
    const now = s.auth.identify(s.bearer, 'GET', undefined);
    expect(now).not.toBeInstanceOf(Promise);
    expect(now).toMatchObject({ sub: 'alice', via: 'jwt' });
    expect(s.auth.identify(s.bearer, 'GET', undefined, false)).toMatchObject({ sub: 'alice' });
    expect(await s.auth.authenticate(s.bearer)).toEqual(now);
    // Nothing sent: undefined when optional, missing_credentials thrown (not rejected) when required.
    expect(s.auth.identify({}, 'GET', undefined, false)).toBeUndefined();
    const missing = thrown(() => s.auth.identify({}, 'GET', undefined));
    expect(isKeywardError(missing, 'missing_credentials')).toBe(true);
  });

  it('throws the refusals at once, with the same codes and the realm in the challenge', async () => {
    const s = await setup({ realm: 'orders-api' });
    const bad = thrown(() => s.auth.identify({ authorization: 'Bearer a.b.c' }, 'GET', undefined));
    expect(toHttpProblem(bad).headers['www-authenticate']).toMatch(
      /^Bearer realm="orders-api", error="invalid_token"/,
    );
    const missing = thrown(() => s.auth.identify({}, 'GET', undefined));
    expect(toHttpProblem(missing).headers['www-authenticate']).toBe('Bearer realm="orders-api"');
    const basic = thrown(() => s.auth.identify({ authorization: 'Basic eDp5' }, 'GET', undefined));
    expect(isKeywardError(basic, 'invalid_request')).toBe(true);
    // Optional ignores another scheme, as optional() does.
    expect(s.auth.identify({ authorization: 'Basic eDp5' }, 'GET', undefined, false)).toBeUndefined();
  });

  it('gives a promise for API keys, getToken and onAuthenticated, rejecting with the same refusals', async () => {
    const s = await setup();
    const { key } = await s.apiKeys.create({ owner: 'ci', name: 'deploy' });
    const viaKey = s.auth.identify({ 'x-api-key': key }, 'POST', undefined);
    expect(viaKey).toBeInstanceOf(Promise);
    expect(await viaKey).toMatchObject({ sub: 'ci', via: 'api_key' });
    const wrongKey = s.auth.identify({ 'x-api-key': `${key.slice(0, -2)}xx` }, 'POST', undefined);
    expect(wrongKey).toBeInstanceOf(Promise);
    expect(isKeywardError(await Promise.resolve(wrongKey).catch((e: unknown) => e))).toBe(true);

    const hooked = await setup({ onAuthenticated: (p) => ({ ...p, roles: ['mapped'] }) });
    const mapped = hooked.auth.identify(hooked.bearer, 'GET', undefined);
    expect(mapped).toBeInstanceOf(Promise);
    expect((await mapped).roles).toEqual(['mapped']);

    const custom = await setup({ getToken: () => undefined, realm: 'custom' });
    const none = custom.auth.identify({}, 'GET', undefined);
    expect(none).toBeInstanceOf(Promise);
    const err = await Promise.resolve(none).catch((e: unknown) => e);
    expect(isKeywardError(err, 'missing_credentials')).toBe(true);
    expect(toHttpProblem(err).headers['www-authenticate']).toBe('Bearer realm="custom"');
  });
});
