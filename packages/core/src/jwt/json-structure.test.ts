// keyward issue #11 ("Token policy"): duplicate member names and nesting depth in header and payload.
import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { decodeJsonObject, MAX_JSON_DEPTH } from './header.js';
import { createJwtVerifier } from './verify.js';

const bytes = (text: string) => Buffer.from(text);
/** A member name spelled with every character as a \u escape: the same name to JSON.parse. */
const escaped = (name: string) =>
  `"${[...name].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;
const member = (name: string, value: unknown) => `${JSON.stringify(name)}:${JSON.stringify(value)}`;

/** JSON objects no deeper than MAX_JSON_DEPTH: any names (quotes, backslashes, colons, unicode). */
const jsonObject = fc.dictionary(fc.string({ unit: 'grapheme' }), fc.jsonValue({ maxDepth: 6 }), {
  maxKeys: 12,
});

describe('decodeJsonObject: duplicate members and depth (property tests)', () => {
  it('agrees with JSON.parse on every object without duplicates, compact or pretty-printed', () => {
    fc.assert(
      fc.property(jsonObject, fc.boolean(), (value, pretty) => {
        const text = pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
        expect(decodeJsonObject(bytes(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it('regression #11: finds a repeated member name at any level, however it is escaped', () => {
    fc.assert(
      fc.property(
        jsonObject,
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.jsonValue({ maxDepth: 2 }),
        fc.jsonValue({ maxDepth: 2 }),
        fc.boolean(),
        fc.nat(3),
        (value, name, first, second, spellEscaped, nesting) => {
          const others = Object.entries(value)
            .filter(([k]) => k !== name)
            .map(([k, v]) => member(k, v));
          const again = `${spellEscaped ? escaped(name) : JSON.stringify(name)}:${JSON.stringify(second)}`;
          let text = `{${[member(name, first), ...others, again].join(',')}}`;
          // Bury it under objects and arrays; the top level stays an object.
          for (let i = 0; i < nesting; i++) text = i % 2 === 0 ? `[1,${text}]` : `{"n":${text}}`;
          if (nesting % 2 === 1) text = `{"w":${text}}`;
          expect(decodeJsonObject(bytes(text))).toBe('duplicate_member');
        },
      ),
      { numRuns: 500 },
    );
  });

  it(`regression #11: accepts ${MAX_JSON_DEPTH} levels of nesting and refuses ${MAX_JSON_DEPTH + 1}`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: MAX_JSON_DEPTH, maxLength: MAX_JSON_DEPTH + 1 }),
        (kinds) => {
          // Level 1 is the top-level object; each further level an object or an array.
          let inner = '0';
          for (const isObject of kinds.slice(1).reverse()) inner = isObject ? `{"a":${inner}}` : `[${inner}]`;
          const text = `{"top":${inner}}`;
          const result = decodeJsonObject(bytes(text));
          if (kinds.length > MAX_JSON_DEPTH) expect(result).toBe('too_deep');
          else expect(result).toEqual(JSON.parse(text));
        },
      ),
    );
  });

  it('brackets, braces, colons and quotes inside strings are not structure', () => {
    const text = '{"a":"{[:\\"}]","b\\\\":"\\\\","c":{"a":"a:a"}}';
    expect(decodeJsonObject(bytes(text))).toEqual(JSON.parse(text));
    expect(decodeJsonObject(bytes(`{"x":"${'['.repeat(40)}"}`))).toEqual({ x: '['.repeat(40) });
  });
});

describe('differential against jose: duplicate members (jose accepts them, last wins)', () => {
  const secret = createSecretKey(randomBytes(32));
  const keys = {
    verificationKey: (kid: string) =>
      kid === 'k1'
        ? { kid, alg: 'HS256' as const, state: 'active' as const, keyObject: secret, verifyUntil: undefined }
        : undefined,
    signingKey: () => ({ kid: 'k1', alg: 'HS256' as const, keyObject: secret }),
  };
  const exp = Math.floor(Date.now() / 1000) + 600;
  const sign = (headerJson: string, payloadJson: string) => {
    const input = `${bytes(headerJson).toString('base64url')}.${bytes(payloadJson).toString('base64url')}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };

  it('regression #11: a duplicate "sub" in the payload: jose takes the last, keyward refuses', async () => {
    const token = sign(
      '{"alg":"HS256","kid":"k1","typ":"at+jwt"}',
      `{"sub":"alice","exp":${exp},"sub":"admin"}`,
    );
    expect((await jwtVerify(token, secret)).payload.sub).toBe('admin');
    expect(codeOf(() => createJwtVerifier({ keys }).verify(token))).toBe('token_malformed');
  });

  it('regression #11: a duplicate "alg" in the header: jose takes the last, keyward refuses', async () => {
    const token = sign('{"alg":"none","kid":"k1","alg":"HS256"}', `{"sub":"alice","exp":${exp}}`);
    expect(decodeProtectedHeader(token).alg).toBe('HS256');
    expect((await jwtVerify(token, secret)).payload.sub).toBe('alice');
    expect(codeOf(() => createJwtVerifier({ keys }).verify(token))).toBe('token_malformed');
  });

  it('agrees with jose on the payload of signed tokens without duplicates', async () => {
    const verifier = createJwtVerifier({ keys, cache: false });
    await fc.assert(
      fc.asyncProperty(jsonObject, async (extra) => {
        const payload = { ...extra, exp };
        const token = sign('{"alg":"HS256","kid":"k1"}', JSON.stringify(payload));
        const ours = verifier.verify(token).payload;
        expect(ours).toEqual((await jwtVerify(token, secret)).payload);
      }),
      { numRuns: 200 },
    );
  });
});
