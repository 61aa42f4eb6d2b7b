import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { KeyLookup, SigningKey, VerificationKey } from '../keys/types.js';
import { makeTestKey } from './__fixtures__/keys.js';
import { signJwt } from './sign.js';
import { createJwtVerifier } from './verify.js';

const NOW = 1_700_000_000_000;
const hs = makeTestKey('HS256', 'imported-hs');
const ed = makeTestKey('EdDSA');
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claims = { sub: 'u1', iat: NOW / 1000, exp: NOW / 1000 + 600 };

/** A kid-less HS256 token, as express-jwt signs it. */
function kidless(
  secret = hs.privateKey.export(),
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
) {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** A lookup that counts how often the verifier asks for the kid-less default key. */
function countingLookup(kidlessDefault: VerificationKey | undefined) {
  const keys = new Map([hs, ed].map((k) => [k.kid, k.verification]));
  const counts = { kidless: 0, byKid: 0 };
  const lookup: KeyLookup = {
    verificationKey(kid) {
      counts.byKid++;
      return keys.get(kid);
    },
    signingKey: (): SigningKey => ed.signing,
    kidlessKey() {
      counts.kidless++;
      return kidlessDefault;
    },
  };
  return { lookup, counts };
}

describe('createJwtVerifier: tokens without kid', () => {
  it('tokens with a kid never ask for the default key (the common path is unchanged)', () => {
    const { lookup, counts } = countingLookup(hs.verification);
    const verifier = createJwtVerifier({ keys: lookup, now: () => NOW, cache: false });
    for (let i = 0; i < 5; i++)
      verifier.verify(signJwt(ed.signing, { ...claims, jti: `j${i}` }, { typ: 'at+jwt' }));
    expect(counts).toEqual({ kidless: 0, byKid: 5 });
    // An unknown kid does not fall back to the default key either.
    expect(codeOf(() => verifier.verify(signJwt({ ...ed.signing, kid: 'other' }, claims, {})))).toBe(
      'token_invalid',
    );
    expect(counts.kidless).toBe(0);
  });

  it('a token without kid is verified by the default key alone, one lookup, no kid lookup', () => {
    const { lookup, counts } = countingLookup(hs.verification);
    const verifier = createJwtVerifier({ keys: lookup, now: () => NOW, cache: false });
    const result = verifier.verify(kidless());
    expect(result.kid).toBe('imported-hs');
    expect(result.header.kid).toBeUndefined();
    expect(counts).toEqual({ kidless: 1, byKid: 0 });
    // Signed by another secret, or with another algorithm than the key record's: refused.
    expect(codeOf(() => verifier.verify(kidless(Buffer.alloc(32, 9))))).toBe('token_signature_invalid');
    expect(codeOf(() => verifier.verify(kidless(undefined, { alg: 'HS512' })))).toBe('token_invalid');
  });

  it('without a default key (or a lookup that has none) a token without kid is kid_missing', () => {
    const { lookup } = countingLookup(undefined);
    const withNone = createJwtVerifier({ keys: lookup, now: () => NOW });
    const legacyLookup: KeyLookup = {
      verificationKey: lookup.verificationKey,
      signingKey: lookup.signingKey,
    };
    const withoutMethod = createJwtVerifier({ keys: legacyLookup, now: () => NOW });
    for (const verifier of [withNone, withoutMethod]) {
      let details: unknown;
      try {
        verifier.verify(kidless());
      } catch (err) {
        details = (err as { code: string; details: unknown }).details;
        expect((err as { code: string }).code).toBe('token_invalid');
      }
      expect(details).toEqual({ reason: 'kid_missing' });
    }
    // An empty kid is still refused as missing, even with a default key.
    const { lookup: withDefault } = countingLookup(hs.verification);
    expect(
      codeOf(() =>
        createJwtVerifier({ keys: withDefault, now: () => NOW }).verify(
          kidless(undefined, { alg: 'HS256', kid: '' }),
        ),
      ),
    ).toBe('token_invalid');
  });

  it('a cached kid-less token is re-checked against the key state (a revoked default key rejects it)', () => {
    let state: VerificationKey = hs.verification;
    const lookup: KeyLookup = {
      verificationKey: (kid) => (kid === hs.kid ? state : undefined),
      signingKey: () => ed.signing,
      kidlessKey: () => state,
    };
    const verifier = createJwtVerifier({ keys: lookup, now: () => NOW });
    const token = kidless();
    expect(verifier.verify(token).kid).toBe(hs.kid);
    state = { ...state, state: 'revoked' };
    expect(codeOf(() => verifier.verify(token))).toBe('key_revoked');
  });
});
