import { createHmac, sign as cryptoSign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { KeywardError, KeywardErrorCode } from '../errors.js';
import { generateKey } from '../keys/generate.js';
import { Keyring } from '../keys/keyring.js';
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

  it('accepts any typ of a typ list option, and no token without typ', () => {
    const { verifier } = setup({ typ: ['at+jwt', 'JWT'] });
    expect(verifier.verify(signJwt(hs.signing, claims(), { typ: 'jwt' })).kid).toBe(hs.kid);
    expect(verifier.verify(signJwt(hs.signing, claims(), { typ: 'at+jwt' })).kid).toBe(hs.kid);
    expect(codeOf(() => verifier.verify(hmacToken({ alg: 'HS256', kid: hs.kid }, claims())))).toBe(
      'token_claim_invalid',
    );
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
    ['typ as an empty list', { typ: [] }],
    ['typ with an empty name', { typ: ['at+jwt', ''] }],
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

describe('regression #11: token policy, hostile tokens signed with a real keyring key', () => {
  /** A real {@link Keyring} with one key of each origin: only the policy can reject these tokens. */
  async function realKeyring() {
    const generated = await generateKey({ use: 'sig', alg: 'ES256', state: 'active', now: NOW });
    const legacy = await generateKey({ use: 'sig', alg: 'HS256', state: 'active', now: NOW });
    const imported = await generateKey({ use: 'sig', alg: 'HS256', state: 'retiring', now: NOW });
    const keyring = new Keyring(
      [
        generated,
        { record: { ...legacy.record, kid: 'legacy-kid', origin: 'legacy' }, material: legacy.material },
        {
          record: { ...imported.record, kid: 'imported-kid', origin: 'imported' },
          material: imported.material,
        },
      ],
      1,
    );
    const verifier = createJwtVerifier({ keys: keyring, now: () => NOW });
    /** Signs exactly the header and payload text given (duplicates and all) with a keyring key. */
    const signRaw = (kid: string, headerJson: string, payloadJson: string) => {
      const key = kid === generated.record.kid ? keyring.signingKey() : undefined;
      const input = `${Buffer.from(headerJson).toString('base64url')}.${Buffer.from(payloadJson).toString('base64url')}`;
      if (key !== undefined) {
        const sig = cryptoSign('sha256', Buffer.from(input), {
          key: key.keyObject,
          dsaEncoding: 'ieee-p1363',
        });
        return `${input}.${sig.toString('base64url')}`;
      }
      const material = kid === 'legacy-kid' ? legacy.material : imported.material;
      const secret = Buffer.from(material.k as string, 'base64url');
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    };
    const gen = generated.record.kid;
    const es = (typ: string | undefined) =>
      JSON.stringify({ alg: 'ES256', kid: gen, ...(typ === undefined ? {} : { typ }) });
    return { keyring, verifier, signRaw, gen, es, payload: JSON.stringify(claims()) };
  }

  it('accepts a well-formed at+jwt token of the generated key (the cases below differ in one thing only)', async () => {
    const { verifier, signRaw, gen, es, payload } = await realKeyring();
    expect(verifier.verify(signRaw(gen, es('at+jwt'), payload)).kid).toBe(gen);
    expect(verifier.verify(signRaw(gen, es('application/at+jwt'), payload)).kid).toBe(gen);
  });

  it.each([
    ['a wrong typ (invite+jwt) on a generated key', 'invite+jwt'],
    ['typ JWT on a generated key', 'JWT'],
    ['a missing typ on a generated key', undefined],
  ])('regression #11: %s is token_claim_invalid', async (_name, typ) => {
    const { verifier, signRaw, gen, es, payload } = await realKeyring();
    const err = (() => {
      try {
        verifier.verify(signRaw(gen, es(typ), payload));
      } catch (e) {
        return e as KeywardError;
      }
      throw new Error('accepted');
    })();
    expect(err.code).toBe('token_claim_invalid');
    expect(err.details).toMatchObject({ claim: 'typ' });
  });

  it('regression #11: the legacy key accepts at+jwt and JWT, refuses a missing or other typ', async () => {
    const { verifier, signRaw, payload } = await realKeyring();
    const hs = (typ?: string) =>
      JSON.stringify({ alg: 'HS256', kid: 'legacy-kid', ...(typ === undefined ? {} : { typ }) });
    expect(verifier.verify(signRaw('legacy-kid', hs('at+jwt'), payload)).kid).toBe('legacy-kid');
    expect(verifier.verify(signRaw('legacy-kid', hs('JWT'), payload)).kid).toBe('legacy-kid');
    expect(codeOf(() => verifier.verify(signRaw('legacy-kid', hs(), payload)))).toBe('token_claim_invalid');
    expect(codeOf(() => verifier.verify(signRaw('legacy-kid', hs('invite+jwt'), payload)))).toBe(
      'token_claim_invalid',
    );
  });

  it('regression #11: an imported key accepts at+jwt, JWT and a missing typ, refuses another typ', async () => {
    const { verifier, signRaw, payload } = await realKeyring();
    const hs = (typ?: string) =>
      JSON.stringify({ alg: 'HS256', kid: 'imported-kid', ...(typ === undefined ? {} : { typ }) });
    for (const typ of ['at+jwt', 'JWT', 'jwt', undefined]) {
      expect(verifier.verify(signRaw('imported-kid', hs(typ), payload)).kid).toBe('imported-kid');
    }
    expect(codeOf(() => verifier.verify(signRaw('imported-kid', hs('invite+jwt'), payload)))).toBe(
      'token_claim_invalid',
    );
  });

  it('a typ that is not a string, or empty, is refused even where a missing typ is accepted', async () => {
    const { verifier, signRaw, payload } = await realKeyring();
    for (const typ of [1, null, true, ['JWT'], { jwt: 1 }, '']) {
      const header = JSON.stringify({ alg: 'HS256', kid: 'imported-kid', typ });
      expect(codeOf(() => verifier.verify(signRaw('imported-kid', header, payload)))).toBe(
        'token_claim_invalid',
      );
      // The second token of the same header is refused from the header memo the same way.
      expect(codeOf(() => verifier.verify(signRaw('imported-kid', header, payload)))).toBe(
        'token_claim_invalid',
      );
    }
  });

  it('regression #11: a per-verify typ override replaces the key policy, also on a cache hit', async () => {
    const { verifier, signRaw, gen, es, payload } = await realKeyring();
    const invite = signRaw(gen, es('invite+jwt'), payload);
    expect(verifier.verify(invite, { typ: 'invite+jwt' }).kid).toBe(gen);
    expect(verifier.verify(invite, { typ: ['x+jwt', 'invite+jwt'] }).kid).toBe(gen);
    const access = signRaw(gen, es('at+jwt'), payload);
    verifier.verify(access); // cached under the default policy
    expect(codeOf(() => verifier.verify(access, { typ: 'invite+jwt' }))).toBe('token_claim_invalid');
    // An override of issuer only keeps the key's typ policy.
    expect(codeOf(() => verifier.verify(invite, { audience: undefined }))).toBe('token_claim_invalid');
  });

  it.each<[string, (r: Awaited<ReturnType<typeof realKeyring>>) => string, string]>([
    [
      'a duplicate member in the payload',
      ({ signRaw, gen, es }) =>
        signRaw(gen, es('at+jwt'), `{"sub":"a","sub":"b","exp":${nowSec + 900},"iat":${nowSec}}`),
      'duplicate_member',
    ],
    [
      'a duplicate member spelled with an escape in the payload',
      ({ signRaw, gen, es }) =>
        signRaw(gen, es('at+jwt'), `{"sub":"a","s\\u0075b":"admin","exp":${nowSec + 900}}`),
      'duplicate_member',
    ],
    [
      'a duplicate member in a nested payload object',
      ({ signRaw, gen, es }) =>
        signRaw(gen, es('at+jwt'), `{"exp":${nowSec + 900},"ctx":[{"role":"user","role":"admin"}]}`),
      'duplicate_member',
    ],
    [
      'a duplicate member in the header',
      ({ signRaw, gen, payload }) =>
        signRaw(gen, `{"alg":"none","alg":"ES256","kid":"${gen}","typ":"at+jwt"}`, payload),
      'duplicate_member',
    ],
    [
      'a duplicate typ in the header',
      ({ signRaw, gen, payload }) =>
        signRaw(gen, `{"alg":"ES256","kid":"${gen}","typ":"invite+jwt","typ":"at+jwt"}`, payload),
      'duplicate_member',
    ],
    [
      '33-level nesting in the payload',
      ({ signRaw, gen, es }) =>
        signRaw(gen, es('at+jwt'), `{"exp":${nowSec + 900},"n":${'['.repeat(32)}${']'.repeat(32)}}`),
      'too_deep',
    ],
    [
      '33-level nesting in the header',
      ({ signRaw, gen }) =>
        signRaw(
          gen,
          `{"alg":"ES256","kid":"${gen}","typ":"at+jwt","x":${'{"a":'.repeat(32)}1${'}'.repeat(32)}}`,
          JSON.stringify(claims()),
        ),
      'too_deep',
    ],
  ])('regression #11: %s is token_malformed', async (_name, make, reason) => {
    const setup = await realKeyring();
    const err = (() => {
      try {
        setup.verifier.verify(make(setup));
      } catch (e) {
        return e as KeywardError;
      }
      throw new Error('accepted');
    })();
    expect(err.code).toBe('token_malformed');
    expect(err.details).toMatchObject({ reason });
  });

  it('regression #11: 32 levels of nesting and same names in different objects still verify', async () => {
    const { verifier, signRaw, gen, es } = await realKeyring();
    const deep = `{"exp":${nowSec + 900},"n":${'['.repeat(31)}${']'.repeat(31)}}`;
    expect(verifier.verify(signRaw(gen, es('at+jwt'), deep)).kid).toBe(gen);
    const sameNames = `{"exp":${nowSec + 900},"a":{"id":1},"b":{"id":2},"c":["id","id"],"id":"\\"id\\""}`;
    expect(verifier.verify(signRaw(gen, es('at+jwt'), sameNames)).payload.id).toBe('"id"');
  });
});
