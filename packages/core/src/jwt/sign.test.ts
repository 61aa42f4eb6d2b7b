import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { makeTestKey, TestKeyring } from './__fixtures__/keys.js';
import { signJwt } from './sign.js';
import { createJwtVerifier } from './verify.js';

const exp = Math.floor(Date.now() / 1000) + 60;

describe('signJwt', () => {
  it.each(['HS256', 'HS384', 'HS512', 'ES256', 'EdDSA', 'RS256', 'PS256'] as const)(
    'round-trips %s through the verifier with header {alg, kid, typ}',
    (alg) => {
      const key = makeTestKey(alg);
      const token = signJwt(key.signing, { sub: 'u', exp }, { typ: 'at+jwt', headers: { cty: 'x' } });
      const { header, payload } = createJwtVerifier({ keys: new TestKeyring(key) }).verify(token);
      expect(header).toEqual({ alg, kid: key.kid, typ: 'at+jwt', cty: 'x' });
      expect(payload).toEqual({ sub: 'u', exp });
    },
  );

  it('defaults typ to JWT and never lets headers override alg or kid', () => {
    const key = makeTestKey('HS256');
    const header = JSON.parse(
      Buffer.from(signJwt(key.signing, { exp }).split('.')[0]!, 'base64url').toString(),
    );
    expect(header).toEqual({ alg: 'HS256', kid: key.kid, typ: 'JWT' });
    for (const name of ['alg', 'kid', 'crit', 'jwk']) {
      expect(codeOf(() => signJwt(key.signing, { exp }, { headers: { [name]: 'x' } }))).toBe(
        'config_invalid',
      );
    }
  });

  it('rejects payloads that are not JSON objects, and keys that do not fit the algorithm', () => {
    const key = makeTestKey('ES256');
    expect(codeOf(() => signJwt(key.signing, [] as unknown as Record<string, unknown>))).toBe(
      'token_claim_invalid',
    );
    expect(codeOf(() => signJwt(key.signing, { n: 1n }))).toBe('token_claim_invalid');
    expect(codeOf(() => signJwt({ ...key.signing, keyObject: key.publicKey }, { exp }))).toBe(
      'alg_unsupported',
    );
    expect(codeOf(() => signJwt({ ...key.signing, alg: 'ES512' as 'ES256' }, { exp }))).toBe(
      'alg_unsupported',
    );
  });
});
