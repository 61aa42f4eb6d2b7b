import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { KeywardError, KeywardErrorCode } from '../errors.js';
import { makeTestKey, TestKeyring } from './__fixtures__/keys.js';
import { signJwt } from './sign.js';
import type { JwtVerifierOptions, RevocationView } from './types.js';
import { createJwtVerifier } from './verify.js';

const NOW = 1_700_000_000_000;
const nowSec = NOW / 1000;
const hs = makeTestKey('HS256');
const rs = makeTestKey('RS256');
const ed = makeTestKey('EdDSA');
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'u1',
  jti: 'j1',
  iat: nowSec,
  exp: nowSec + 900,
  ...extra,
});

function setup(options: Partial<JwtVerifierOptions> = {}) {
  const keys = new TestKeyring(hs, rs, ed);
  let clock = NOW;
  const verifier = createJwtVerifier({ keys, now: () => clock, ...options });
  return { keys, verifier, advance: (ms: number) => (clock += ms) };
}

/** Signs arbitrary header + payload with HMAC, bypassing signJwt's own rules. */
function hmacToken(
  header: Record<string, unknown>,
  payload: unknown,
  secret: Buffer | string = hs.privateKey.export(),
) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('createJwtVerifier: happy path', () => {
  it('returns payload, header and kid of a token signed by signJwt', () => {
    const { verifier } = setup({ typ: 'at+jwt' });
    const token = signJwt(ed.signing, claims({ scope: 'read' }), { typ: 'at+jwt' });
    const result = verifier.verify(token);
    expect(result.payload).toEqual(claims({ scope: 'read' }));
    expect(result.header).toEqual({ alg: 'EdDSA', kid: ed.kid, typ: 'at+jwt' });
    expect(result.kid).toBe(ed.kid);
  });

  it('accepts "application/at+jwt" for typ "at+jwt" case-insensitively, rejects "JWT"', () => {
    const { verifier } = setup({ typ: 'at+jwt' });
    expect(verifier.verify(signJwt(hs.signing, claims(), { typ: 'Application/AT+JWT' })).kid).toBe(hs.kid);
    expect(codeOf(() => verifier.verify(signJwt(hs.signing, claims(), { typ: 'JWT' })))).toBe(
      'token_claim_invalid',
    );
  });
});

describe('createJwtVerifier: hostile tokens', () => {
  const cases: [string, () => string, KeywardErrorCode][] = [
    ['alg none', () => `${b64({ alg: 'none', kid: hs.kid })}.${b64(claims())}.`, 'token_malformed'],
    [
      'alg none with a signature',
      () => `${b64({ alg: 'none', kid: hs.kid })}.${b64(claims())}.AAAA`,
      'token_invalid',
    ],
    [
      'HS256 signed with the RSA public key PEM as secret',
      () =>
        hmacToken(
          { alg: 'HS256', kid: rs.kid },
          claims(),
          rs.publicKey.export({ type: 'spki', format: 'pem' }) as string,
        ),
      'token_invalid',
    ],
    [
      'HS256 signed with the Ed25519 public key bytes as secret',
      () =>
        hmacToken(
          { alg: 'HS256', kid: ed.kid },
          claims(),
          ed.publicKey.export({ type: 'spki', format: 'der' }),
        ),
      'token_invalid',
    ],
    [
      'embedded jwk header',
      () => hmacToken({ alg: 'HS256', kid: hs.kid, jwk: { kty: 'oct', k: 'AA' } }, claims()),
      'token_invalid',
    ],
    [
      'jku header',
      () => hmacToken({ alg: 'HS256', kid: hs.kid, jku: 'https://evil.example/jwks' }, claims()),
      'token_invalid',
    ],
    [
      'unknown crit',
      () => hmacToken({ alg: 'HS256', kid: hs.kid, crit: ['exp'], exp: 1 }, claims()),
      'token_invalid',
    ],
    ['b64 false', () => hmacToken({ alg: 'HS256', kid: hs.kid, b64: false }, claims()), 'token_invalid'],
    ['missing kid', () => hmacToken({ alg: 'HS256' }, claims()), 'token_invalid'],
    ['unknown kid', () => hmacToken({ alg: 'HS256', kid: 'nope' }, claims()), 'token_invalid'],
    [
      'non-JSON header',
      () => `${Buffer.from('{alg').toString('base64url')}.${b64(claims())}.AAAA`,
      'token_malformed',
    ],
    ['array header', () => `${b64([1])}.${b64(claims())}.AAAA`, 'token_malformed'],
    [
      'non-JSON payload',
      () => {
        const t = hmacToken({ alg: 'HS256', kid: hs.kid }, 0);
        const [h] = t.split('.');
        const input = `${h}.${Buffer.from('not json').toString('base64url')}`;
        return `${input}.${createHmac('sha256', hs.privateKey.export()).update(input).digest('base64url')}`;
      },
      'token_malformed',
    ],
    ['array payload', () => hmacToken({ alg: 'HS256', kid: hs.kid }, [claims()]), 'token_malformed'],
    ['two segments', () => `${b64({ alg: 'HS256', kid: hs.kid })}.${b64(claims())}`, 'token_malformed'],
    ['four segments', () => `${hmacToken({ alg: 'HS256', kid: hs.kid }, claims())}.AAAA`, 'token_malformed'],
    [
      'padding in signature',
      () => `${hmacToken({ alg: 'HS256', kid: hs.kid }, claims())}=`,
      'token_malformed',
    ],
    [
      'standard-base64 char in signature',
      () => `${hmacToken({ alg: 'HS256', kid: hs.kid }, claims()).slice(0, -1)}+`,
      'token_malformed',
    ],
    [
      'whitespace in payload',
      () => {
        const [h, p, s] = hmacToken({ alg: 'HS256', kid: hs.kid }, claims()).split('.');
        return `${h}.${p!.slice(0, 4)} ${p!.slice(4)}.${s}`;
      },
      'token_malformed',
    ],
    [
      'flipped signature',
      () => {
        const t = hmacToken({ alg: 'HS256', kid: hs.kid }, claims());
        return `${t.slice(0, -2)}${t.endsWith('AA') ? 'BA' : 'AA'}`;
      },
      'token_signature_invalid',
    ],
    [
      'alg swapped to the RS256 kid',
      () => signJwt({ ...hs.signing, kid: rs.kid }, claims()),
      'token_invalid',
    ],
    ['missing exp', () => hmacToken({ alg: 'HS256', kid: hs.kid }, { sub: 'u1' }), 'token_claim_invalid'],
    [
      'string exp',
      () => hmacToken({ alg: 'HS256', kid: hs.kid }, claims({ exp: String(nowSec + 900) })),
      'token_claim_invalid',
    ],
    ['expired beyond tolerance', () => signJwt(hs.signing, claims({ exp: nowSec - 61 })), 'token_expired'],
    ['nbf beyond tolerance', () => signJwt(hs.signing, claims({ nbf: nowSec + 61 })), 'token_not_yet_valid'],
    ['iat beyond tolerance', () => signJwt(hs.signing, claims({ iat: nowSec + 61 })), 'token_not_yet_valid'],
    ['oversized', () => signJwt(hs.signing, claims({ pad: 'x'.repeat(20_000) })), 'token_too_large'],
  ];
  it.each(cases)('rejects %s', (_name, make, code) => {
    const { verifier } = setup();
    expect(codeOf(() => verifier.verify(make()))).toBe(code);
  });

  it('accepts exp and nbf within the 60 s default tolerance', () => {
    const { verifier } = setup();
    expect(verifier.verify(signJwt(hs.signing, claims({ exp: nowSec - 59, nbf: nowSec + 59 }))).kid).toBe(
      hs.kid,
    );
  });

  it('rejects a non-string token without crashing', () => {
    const { verifier } = setup();
    expect(codeOf(() => verifier.verify(undefined as unknown as string))).toBe('token_malformed');
  });

  it('checks iss and aud, and per-call overrides replace them', () => {
    const { verifier } = setup({ issuer: ['https://a.example', 'https://b.example'], audience: 'api' });
    expect(
      verifier.verify(signJwt(hs.signing, claims({ iss: 'https://b.example', aud: ['x', 'api'] }))).kid,
    ).toBe(hs.kid);
    expect(
      codeOf(() => verifier.verify(signJwt(hs.signing, claims({ iss: 'https://c.example', aud: 'api' })))),
    ).toBe('token_claim_invalid');
    const token = signJwt(hs.signing, claims({ iss: 'https://a.example', aud: 'api' }));
    verifier.verify(token);
    expect(codeOf(() => verifier.verify(token, { audience: 'other' }))).toBe('token_claim_invalid');
  });

  it('rejects keys by state: revoked → key_revoked, retired or past verifyUntil → token_invalid', () => {
    const { keys, verifier } = setup();
    const token = signJwt(hs.signing, claims());
    keys.setState(hs.kid, 'retiring', NOW - 1);
    expect(codeOf(() => verifier.verify(token))).toBe('token_invalid');
    keys.setState(hs.kid, 'retired');
    expect(codeOf(() => verifier.verify(token))).toBe('token_invalid');
    keys.setState(hs.kid, 'revoked');
    expect(codeOf(() => verifier.verify(token))).toBe('key_revoked');
  });
});

describe('createJwtVerifier: cache', () => {
  it('rejects a cached token once its key is revoked, and keeps rejecting it', () => {
    const { keys, verifier } = setup();
    const token = signJwt(rs.signing, claims());
    verifier.verify(token);
    keys.setState(rs.kid, 'revoked');
    expect(codeOf(() => verifier.verify(token))).toBe('key_revoked');
    keys.setState(rs.kid, 'active');
    expect(verifier.verify(token).kid).toBe(rs.kid);
  });

  it('consults the revocation view on every cache hit', () => {
    const revoked = new Set<string>();
    const revocations: RevocationView = {
      check: ({ jti }) => (jti && revoked.has(jti) ? 'token_revoked' : undefined),
    };
    const { verifier } = setup({ revocations });
    const token = signJwt(hs.signing, claims({ jti: 'abc' }));
    expect(verifier.verify(token).payload.jti).toBe('abc');
    revoked.add('abc');
    expect(codeOf(() => verifier.verify(token))).toBe('token_revoked');
  });

  it('rejects a cached token after exp (injected clock)', () => {
    const { verifier, advance } = setup({ clockToleranceSec: 0 });
    const token = signJwt(hs.signing, claims({ exp: nowSec + 10 }));
    verifier.verify(token);
    advance(9_000);
    expect(verifier.verify(token).kid).toBe(hs.kid);
    advance(1_000);
    expect(codeOf(() => verifier.verify(token))).toBe('token_expired');
  });

  it('returns the same frozen result on a hit; forgetKid and clearCache drop entries', () => {
    const { verifier } = setup();
    const token = signJwt(ed.signing, claims());
    const first = verifier.verify(token);
    expect(verifier.verify(token)).toBe(first);
    expect(Object.isFrozen(first.payload)).toBe(true);
    verifier.forgetKid(ed.kid);
    const second = verifier.verify(token);
    expect(second).not.toBe(first);
    verifier.clearCache();
    expect(verifier.verify(token)).not.toBe(second);
  });

  it('does not cache with cache: false', () => {
    const { verifier } = setup({ cache: false });
    const token = signJwt(hs.signing, claims());
    expect(verifier.verify(token)).not.toBe(verifier.verify(token));
  });
});

describe('createJwtVerifier: configuration', () => {
  it.each<[string, Partial<JwtVerifierOptions>]>([
    ['clockToleranceSec > 600', { clockToleranceSec: 601 }],
    ['negative clockToleranceSec', { clockToleranceSec: -1 }],
    ['maxTokenBytes 0', { maxTokenBytes: 0 }],
    ['cache.max 0', { cache: { max: 0 } }],
    ['empty issuer', { issuer: '' }],
    ['audience of numbers', { audience: [1] as unknown as string[] }],
  ])('fails with config_invalid for %s', (_name, bad) => {
    expect(codeOf(() => createJwtVerifier({ keys: new TestKeyring(), ...bad }))).toBe('config_invalid');
  });
});

describe('error messages never contain the token', () => {
  it('for every rejection above and on cache hits', () => {
    const { keys, verifier } = setup({ audience: 'api' });
    const tokens = [
      hmacToken({ alg: 'HS256', kid: hs.kid }, claims({ aud: 'nope' })),
      hmacToken({ alg: 'HS256', kid: 'unknown-kid' }, claims()),
      `${hmacToken({ alg: 'HS256', kid: hs.kid }, claims()).slice(0, -3)}AAA`,
      `${b64({ alg: 'HS256', kid: hs.kid })}.${Buffer.from('oops').toString('base64url')}.sig`,
      hmacToken({ alg: 'HS256', kid: hs.kid }, claims({ aud: 'api', exp: nowSec - 1000 })),
    ];
    const cached = hmacToken({ alg: 'HS256', kid: hs.kid }, claims({ aud: 'api' }));
    verifier.verify(cached);
    keys.setState(hs.kid, 'revoked');
    for (const token of [...tokens, cached]) {
      const err = (() => {
        try {
          verifier.verify(token);
        } catch (e) {
          return e as KeywardError;
        }
        throw new Error('expected a rejection');
      })();
      const text = `${err.message} ${JSON.stringify(err.details ?? {})} ${err.stack ?? ''}`;
      for (const part of token.split('.').filter((s) => s.length > 8)) expect(text).not.toContain(part);
    }
  });
});
