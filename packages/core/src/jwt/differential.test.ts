import { constants, createHmac, sign as cryptoSign } from 'node:crypto';
import fc from 'fast-check';
import { type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { KeywardError } from '../errors.js';
import { ALGS, makeTestKey, type TestKey, TestKeyring } from './__fixtures__/keys.js';
import { signJwt } from './sign.js';
import { createJwtVerifier } from './verify.js';

// Differential test against jose, the correctness reference. Where keyward is deliberately stricter
// than jose (see `strictnessReason`), a token jose accepts may be rejected, with the expected code.
const NOW = 1_700_000_000_000;
const NOW_SEC = NOW / 1000;
const TOLERANCE = 60;
const ISSUER = ['https://a.example', 'https://b.example'];
const AUDIENCE = 'api';
const TYP = 'at+jwt';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const isStrictB64 = (s: string) => s.length % 4 !== 1 && [...s].every((c) => B64URL.includes(c));

function decodeJson(segment: string | undefined): unknown {
  try {
    return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Why keyward may reject a token jose accepts, and with which code; undefined = no reason. */
function strictnessReason(token: string, key: TestKey): string | undefined {
  const parts = token.split('.');
  if (!parts.every(isStrictB64)) return 'token_malformed';
  const header = decodeJson(parts[0]) as Record<string, unknown>;
  if (header.kid !== key.kid) return 'token_invalid';
  if (['crit', 'b64', 'jwk', 'jku', 'x5u', 'x5c'].some((h) => h in header)) return 'token_invalid';
  const payload = decodeJson(parts[1]) as Record<string, unknown>;
  if (typeof payload.iat === 'number' && payload.iat > NOW_SEC + TOLERANCE) return 'token_not_yet_valid';
  return undefined;
}

/** Signs any header with the right key, as a legitimate but unusual issuer would. */
function rawSign(key: TestKey, header: Record<string, unknown>, payloadSegment: string): string {
  const input = `${enc(header)}.${payloadSegment}`;
  const data = Buffer.from(input);
  let sig: Buffer;
  if (key.alg === 'HS256') sig = createHmac('sha256', key.privateKey).update(data).digest();
  else if (key.alg === 'ES256')
    sig = cryptoSign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  else if (key.alg === 'EdDSA' || key.alg === 'Ed25519') sig = cryptoSign(null, data, key.privateKey);
  else if (key.alg === 'PS256')
    sig = cryptoSign('sha256', data, {
      key: key.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
  else sig = cryptoSign('sha256', data, key.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

/** Mostly valid values, sometimes absent or wrong, so that both verdicts are common. */
const timeArb = fc.integer({ min: NOW_SEC - 200, max: NOW_SEC + 200 });
const maybe = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: fc.constant(undefined) }, invalid);
const claimsArb = fc.record({
  sub: fc.option(fc.string({ maxLength: 12 }), { nil: undefined }),
  exp: maybe(fc.integer({ min: NOW_SEC - 100, max: NOW_SEC + 900 }), fc.constantFrom('soon', null, -1)),
  nbf: fc.option(timeArb, { nil: undefined }),
  iat: fc.option(timeArb, { nil: undefined }),
  iss: maybe(fc.constantFrom(...ISSUER), fc.constantFrom('https://c.example', 5)),
  aud: maybe(fc.constantFrom('api', ['x', 'api']), fc.constantFrom(['x'], 'other', [])),
  jti: fc.option(fc.uuid(), { nil: undefined }),
  extra: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }),
});
const typArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('at+jwt', 'application/AT+JWT') },
  fc.constantFrom<string | undefined>('JWT', undefined),
);
const oddHeaderArb = fc.constantFrom<Record<string, unknown>>(
  {},
  { crit: ['b64'], b64: true },
  { b64: false },
  { jwk: { kty: 'oct', k: 'AA' } },
  { x5u: 'https://x.example' },
  { kid: undefined },
  { kid: 'other' },
  { alg: 'none' },
  { alg: 'HS512' },
);
const tamperArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) },
  fc.record({
    kind: fc.constant('char' as const),
    segment: fc.integer({ min: 0, max: 2 }),
    at: fc.nat(),
    ch: fc.constantFrom(...B64URL, '+', '/', '=', ' ', '.', 'é'),
  }),
  fc.record({ kind: fc.constant('header' as const), header: oddHeaderArb }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('payload' as const),
    json: fc.constantFrom(
      `{"exp":1e400,"iss":"${ISSUER[0]}","aud":"api"}`,
      `{"exp":${NOW_SEC + 10},"iss":"${ISSUER[0]}","aud":"api","__proto__":{"x":1}}`,
      `{"exp":${NOW_SEC + 10},"exp":1,"iss":"${ISSUER[0]}","aud":"api"}`,
      '[]',
      'null',
      '{"exp":',
    ),
  }),
  fc.record({
    kind: fc.constant('noise' as const),
    text: fc.string({ unit: fc.constantFrom(...B64URL, '.', '=') }),
  }),
);
type Tamper = typeof tamperArb extends fc.Arbitrary<infer T> ? T : never;

function applyTamper(token: string, tamper: Tamper, key: TestKey): string {
  const parts = token.split('.') as [string, string, string];
  switch (tamper.kind) {
    case 'none':
      return token;
    case 'char': {
      const seg = parts[tamper.segment]!;
      const i = tamper.at % Math.max(seg.length, 1);
      parts[tamper.segment] = seg.slice(0, i) + tamper.ch + seg.slice(i + 1);
      return parts.join('.');
    }
    case 'header': {
      const header = { ...(decodeJson(parts[0]) as object), ...tamper.header };
      return rawSign(key, header, parts[1]);
    }
    case 'payload':
      return rawSign(
        key,
        decodeJson(parts[0]) as Record<string, unknown>,
        Buffer.from(tamper.json).toString('base64url'),
      );
    case 'cut':
      return token.slice(0, tamper.at % token.length);
    case 'noise':
      return tamper.text;
  }
}

for (const alg of ALGS) {
  describe(`differential vs jose: ${alg}`, () => {
    const key = makeTestKey(alg);
    const verifier = createJwtVerifier({
      keys: new TestKeyring(key),
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: TYP,
      clockToleranceSec: TOLERANCE,
      now: () => NOW,
    });
    const joseOptions = {
      algorithms: [alg],
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: TYP,
      clockTolerance: TOLERANCE,
      currentDate: new Date(NOW),
      requiredClaims: ['exp'],
    };

    it('accepts exactly what jose accepts, with the same payload', async () => {
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(claimsArb, typArb, fc.boolean(), tamperArb, async (claims, typ, byJose, tamper) => {
          const signed = byJose
            ? await new SignJWT(claims as JWTPayload)
                .setProtectedHeader({ alg, kid: key.kid, ...(typ && { typ }) })
                .sign(key.privateKey)
            : signJwt(key.signing, claims, typ === undefined ? {} : { typ });
          const token = applyTamper(signed, tamper, key);
          const reference = await jwtVerify(token, key.publicKey, joseOptions).then(
            (r) => ({ ok: true as const, payload: r.payload }),
            () => ({ ok: false as const }),
          );
          let ours: { ok: true; payload: unknown } | { ok: false; code: string };
          try {
            ours = { ok: true, payload: verifier.verify(token).payload };
          } catch (err) {
            if (!(err instanceof KeywardError)) throw err;
            ours = { ok: false, code: err.code };
          }
          if (!reference.ok) {
            expect(ours.ok).toBe(false);
          } else if (ours.ok) {
            accepted++;
            expect(ours.payload).toEqual(reference.payload);
          } else {
            expect(ours.code).toBe(strictnessReason(token, key));
          }
        }),
        { numRuns: alg.startsWith('RS') || alg.startsWith('PS') ? 150 : 300 },
      );
      // Guards against a generator that only ever produces rejected tokens. About 1 run in 15 accepts
      // no more than 5 (150 runs of RS/PS), so the bound is "some", not a count that flakes.
      expect(accepted).toBeGreaterThan(0);
    });

    it('signs tokens jose verifies', async () => {
      const token = signJwt(
        key.signing,
        { sub: 'u', exp: NOW_SEC + 60, iss: ISSUER[0], aud: 'api' },
        { typ: TYP },
      );
      const { payload, protectedHeader } = await jwtVerify(token, key.publicKey, joseOptions);
      expect(payload.sub).toBe('u');
      expect(protectedHeader).toEqual({ alg, kid: key.kid, typ: TYP });
    });
  });
}
