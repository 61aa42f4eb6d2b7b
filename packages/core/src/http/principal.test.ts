// The principal of a verified token is built once per verifier result and kept with it (issue #15):
// a verify-cache hit returns the same frozen principal, the cookie and header ways never share one,
// and a VerifiedJwt the verifier did not make still gets a correct principal.
import { afterEach, describe, expect, it } from 'vitest';
import { makeCore } from '../apikeys/__fixtures__/core.js';
import { makeTestKey, TestKeyring } from '../jwt/__fixtures__/keys.js';
import { signJwt } from '../jwt/sign.js';
import { createJwtVerifier } from '../jwt/verify.js';
import type { KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { principalFromJwt } from './principal.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function core(): Promise<KeywardCore> {
  const c = await makeCore(createMemoryStore());
  cores.push(c);
  return c;
}

describe('principalFromJwt', () => {
  it('returns the same frozen principal for every cache hit of a token, a new one per token', async () => {
    const c = await core();
    const token = c.jwt.sign({ sub: 'alice', scope: 'read write', roles: ['admin', 7] });
    const first = principalFromJwt(c.jwt.verify(token));
    expect(first).toMatchObject({ sub: 'alice', scopes: ['read', 'write'], roles: ['admin'], via: 'jwt' });
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.scopes) && Object.isFrozen(first.roles)).toBe(true);
    expect(principalFromJwt(c.jwt.verify(token))).toBe(first);
    const other = principalFromJwt(c.jwt.verify(c.jwt.sign({ sub: 'alice', scope: 'read write' })));
    expect(other).not.toBe(first);
    expect(other.roles).toEqual([]);
  });

  it('keeps the verified result frozen while its principal is kept with it', async () => {
    const c = await core();
    const verified = c.jwt.verify(c.jwt.sign({ sub: 'bob' }));
    principalFromJwt(verified);
    expect(Object.isFrozen(verified)).toBe(true);
    expect(Object.keys(verified).sort()).toEqual(['header', 'kid', 'payload']);
    expect(JSON.parse(JSON.stringify(verified))).toEqual({
      payload: verified.payload,
      header: verified.header,
      kid: verified.kid,
    });
  });

  it('gives the cookie and the header ways their own principal, whichever comes first', async () => {
    const c = await core();
    const token = c.jwt.sign({ sub: 'carol' });
    const viaCookie = principalFromJwt(c.jwt.verify(token), { fromCookie: true });
    const viaHeader = principalFromJwt(c.jwt.verify(token));
    expect(viaCookie.fromCookie).toBe(true);
    expect(viaHeader.fromCookie).toBeUndefined();
    expect(principalFromJwt(c.jwt.verify(token), { fromCookie: true }).fromCookie).toBe(true);
    expect(principalFromJwt(c.jwt.verify(token)).fromCookie).toBeUndefined();
  });

  it('builds a fresh principal per call with the verify cache off', () => {
    const key = makeTestKey('HS256');
    const verifier = createJwtVerifier({ keys: new TestKeyring(key), cache: false });
    const token = signJwt(key.signing, { sub: 'dave', exp: Math.floor(Date.now() / 1000) + 60 });
    const a = principalFromJwt(verifier.verify(token));
    const b = principalFromJwt(verifier.verify(token));
    expect(a).toEqual(b);
    expect(a).not.toBe(b);
  });

  it('gives a VerifiedJwt the verifier did not make a correct principal, every time', () => {
    const verified = Object.freeze({
      payload: { sub: 'erin', exp: 2_000_000_000, jti: 'j1', scp: ['a', 1, 'b'] },
      header: { alg: 'HS256' as const, kid: 'k1' },
      kid: 'k1',
    });
    const p = principalFromJwt(verified);
    expect(p).toMatchObject({ sub: 'erin', scopes: ['a', 'b'], jti: 'j1', kid: 'k1', expiresAt: 2e12 });
    expect(principalFromJwt(verified, { fromCookie: true }).fromCookie).toBe(true);
    expect(principalFromJwt(verified).fromCookie).toBeUndefined();
  });
});
