import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { Fernet } from './fernet.js';

interface SpecVector {
  secret: string;
  token: string;
  now: string;
  src?: string;
  iv?: number[];
  ttl_sec?: number;
  desc?: string;
}
const spec = (name: string): SpecVector[] =>
  JSON.parse(readFileSync(new URL(`./__fixtures__/spec/${name}.json`, import.meta.url), 'utf8'));

const KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const KEY_BYTES = Buffer.from(KEY, 'base64url');
const NOW = Date.parse('1985-10-26T01:20:00-07:00');

describe('Fernet spec vectors (fernet/spec)', () => {
  it.each(spec('generate'))('generate: $src', (v) => {
    const token = new Fernet(v.secret).encrypt(v.src!, {
      now: Date.parse(v.now),
      iv: Uint8Array.from(v.iv!),
    });
    expect(token).toBe(v.token);
  });

  it.each(spec('verify'))('verify: $src', (v) => {
    const fernet = new Fernet(v.secret);
    expect(fernet.decryptString(v.token, { ttlSeconds: v.ttl_sec!, now: Date.parse(v.now) })).toBe(v.src);
  });

  it.each(spec('invalid'))('invalid: $desc', (v) => {
    const fernet = new Fernet(v.secret);
    const code = codeOf(() => fernet.decrypt(v.token, { ttlSeconds: v.ttl_sec!, now: Date.parse(v.now) }));
    expect(code).toBe(v.desc === 'expired TTL' ? 'fernet_token_expired' : 'fernet_token_invalid');
  });
});

describe('Fernet keys', () => {
  it('accepts the key with or without padding, in either base64 alphabet, or as 32 raw bytes', () => {
    const token = new Fernet(KEY).encrypt('x', { now: NOW });
    const standard = KEY_BYTES.toString('base64');
    for (const key of [
      KEY.slice(0, -1),
      standard,
      standard.slice(0, -1),
      KEY_BYTES,
      new Uint8Array(KEY_BYTES),
    ]) {
      expect(new Fernet(key).decryptString(token)).toBe('x');
    }
  });

  it.each([
    ['too short', KEY.slice(0, 40)],
    ['too long', `${KEY.slice(0, -1)}AAAA`],
    ['bad characters', `${KEY.slice(0, -2)}%=`],
    ['31 raw bytes', new Uint8Array(31)],
    ['not a key', 42 as unknown as string],
  ])('rejects a key that is %s with fernet_key_invalid', (_, key) => {
    expect(codeOf(() => new Fernet(key))).toBe('fernet_key_invalid');
  });

  it('generateKey makes distinct 32-byte keys in Python format', () => {
    const a = Fernet.generateKey();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(Fernet.generateKey()).not.toBe(a);
  });

  it('copies raw key bytes: mutating the caller array later does not change the key', () => {
    const bytes = new Uint8Array(KEY_BYTES);
    const fernet = new Fernet(bytes);
    const token = fernet.encrypt('x');
    bytes.fill(0);
    expect(fernet.decryptString(token)).toBe('x');
  });

  it('never shows key bytes in JSON.stringify, util.inspect or String()', () => {
    const fernet = new Fernet(KEY);
    const keyId = fernet.keyId;
    expect(keyId).toMatch(/^[0-9a-f]{8}$/);
    const shown = [JSON.stringify(fernet), inspect(fernet, { showHidden: true, depth: 10 }), String(fernet)];
    const forms = [
      KEY,
      KEY.slice(0, 22),
      KEY_BYTES.toString('hex').slice(0, 16),
      KEY_BYTES.toString('base64'),
    ];
    for (const text of shown) {
      expect(text).toContain(keyId);
      for (const form of forms) expect(text).not.toContain(form);
    }
    expect(JSON.parse(JSON.stringify({ fernet }))).toEqual({ fernet: { keyId } });
    expect(Object.keys(fernet)).toEqual([]);
  });
});

describe('Fernet encrypt / decrypt', () => {
  const fernet = new Fernet(KEY);

  it('round-trips strings and bytes, including empty input', () => {
    expect(fernet.decryptString(fernet.encrypt(''))).toBe('');
    expect(fernet.decryptString(fernet.encrypt('héllo 🔑'))).toBe('héllo 🔑');
    expect([...fernet.decrypt(fernet.encrypt(new Uint8Array([0, 255, 1])))]).toEqual([0, 255, 1]);
  });

  it('uses a fresh IV per token, also across refills of the IV pool (256 per refill)', () => {
    const ivs = Array.from({ length: 600 }, () =>
      Buffer.from(fernet.encrypt('same', { now: NOW }), 'base64url')
        .subarray(9, 25)
        .toString('hex'),
    );
    expect(new Set(ivs).size).toBe(600);
  });

  it('extractTimestamp returns epoch seconds, and rejects a forged token', () => {
    const token = fernet.encrypt('x', { now: NOW + 999 });
    expect(fernet.extractTimestamp(token)).toBe(NOW / 1000);
    expect(codeOf(() => new Fernet(Fernet.generateKey()).extractTimestamp(token))).toBe(
      'fernet_token_invalid',
    );
  });

  it('applies the TTL only when asked, and the 60 s clock-skew rule only with a TTL (as Python)', () => {
    const token = fernet.encrypt('x', { now: NOW });
    const at = (seconds: number) => NOW + seconds * 1000;
    expect(fernet.decryptString(token, { ttlSeconds: 10, now: at(10) })).toBe('x');
    expect(codeOf(() => fernet.decrypt(token, { ttlSeconds: 10, now: at(11) }))).toBe('fernet_token_expired');
    expect(fernet.decryptString(token, { ttlSeconds: 10, now: at(-60) })).toBe('x');
    expect(codeOf(() => fernet.decrypt(token, { ttlSeconds: 10, now: at(-61) }))).toBe(
      'fernet_token_invalid',
    );
    expect(fernet.decryptString(token, { now: at(-3600) })).toBe('x');
  });

  it('rejects bad options with config_invalid', () => {
    expect(codeOf(() => fernet.encrypt('x', { iv: new Uint8Array(15) }))).toBe('config_invalid');
    expect(codeOf(() => fernet.encrypt('x', { now: Number.NaN }))).toBe('config_invalid');
    expect(codeOf(() => fernet.encrypt(42 as unknown as string))).toBe('config_invalid');
    expect(codeOf(() => fernet.decrypt(fernet.encrypt('x'), { ttlSeconds: -1 }))).toBe('config_invalid');
  });

  it('rejects a token that is not a string, unpadded, or spelled with other characters', () => {
    const token = fernet.encrypt('hello', { now: NOW });
    expect(token.endsWith('=')).toBe(true);
    for (const bad of [
      undefined,
      '',
      token.replace(/=+$/, ''), // Python rejects missing padding too
      `${token.slice(0, 10)}\n${token.slice(10)}`,
      `${token}=`,
      ` ${token}`,
    ]) {
      expect(codeOf(() => fernet.decrypt(bad as string))).toBe('fernet_token_invalid');
    }
  });

  it('rejects a non-canonical spelling that decodes to the same bytes (unused low bits set)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (const plaintext of ['hello', 'twenty bytes long!!!']) {
      const token = fernet.encrypt(plaintext);
      const pad = token.endsWith('==') ? 2 : 1;
      const at = token.length - pad - 1;
      const sibling = alphabet[alphabet.indexOf(token[at]!) | 1]!;
      const spelled = token.slice(0, at) + sibling + token.slice(at + 1);
      expect(spelled).not.toBe(token);
      expect(Buffer.from(spelled, 'base64url').equals(Buffer.from(token, 'base64url'))).toBe(true);
      expect(codeOf(() => fernet.decrypt(spelled))).toBe('fernet_token_invalid');
    }
  });

  it('rejects valid-HMAC plaintext that is not UTF-8 in decryptString only', () => {
    const token = fernet.encrypt(new Uint8Array([0xff, 0xfe]));
    expect(fernet.decrypt(token)).toHaveLength(2);
    expect(codeOf(() => fernet.decryptString(token))).toBe('fernet_token_invalid');
  });

  it('keeps the token and key out of error messages', () => {
    const token = fernet.encrypt('x', { now: NOW });
    for (const run of [
      () => new Fernet(Fernet.generateKey()).decrypt(token),
      () => fernet.decrypt(token, { ttlSeconds: 0, now: NOW + 5000 }),
      () => new Fernet(`${KEY.slice(0, 40)}`),
    ]) {
      try {
        run();
        expect.unreachable();
      } catch (err) {
        const text = `${(err as Error).message} ${JSON.stringify((err as { details?: unknown }).details)}`;
        expect(text).not.toContain(token.slice(0, 40));
        expect(text).not.toContain(KEY.slice(0, 20));
      }
    }
  });
});

describe('Fernet properties', () => {
  const fernet = new Fernet(KEY);
  const encode = (raw: Buffer) => {
    const s = raw.toString('base64url');
    return s + '='.repeat((4 - (s.length % 4)) % 4);
  };

  it('round-trips any bytes at any time', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (data, seconds) => {
          const token = fernet.encrypt(data, { now: seconds * 1000 });
          expect(Buffer.from(fernet.decrypt(token)).equals(Buffer.from(data))).toBe(true);
          expect(fernet.extractTimestamp(token)).toBe(seconds);
        },
      ),
    );
  });

  it('rejects any single-bit flip of the token bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (data, at, bit) => {
          const raw = Buffer.from(fernet.encrypt(data), 'base64url');
          const i = at % raw.length;
          raw[i] = raw[i]! ^ (1 << bit);
          expect(codeOf(() => fernet.decrypt(encode(raw)))).toBe('fernet_token_invalid');
        },
      ),
    );
  });

  it('rejects any change of one character of the token text', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=';
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.nat(), (data, at, pick) => {
        const token = fernet.encrypt(data);
        const i = at % token.length;
        const others = alphabet.replace(token[i]!, '');
        const changed = token.slice(0, i) + others[pick % others.length] + token.slice(i + 1);
        expect(codeOf(() => fernet.decrypt(changed))).toBe('fernet_token_invalid');
      }),
    );
  });

  it('rejects any truncation or extension, of the bytes or of the text', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 48 }),
        fc.string({ minLength: 1, maxLength: 8 }),
        (data, cut, extra, suffix) => {
          const token = fernet.encrypt(data);
          const raw = Buffer.from(token, 'base64url');
          const candidates = [
            token.slice(0, cut % token.length),
            token + suffix,
            encode(raw.subarray(0, cut % raw.length)),
            encode(Buffer.concat([raw, extra])),
          ];
          for (const bad of candidates)
            expect(codeOf(() => fernet.decrypt(bad))).toBe('fernet_token_invalid');
        },
      ),
    );
  });

  it('rejects a token under any other key', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 64 }),
        (key, data) => {
          fc.pre(!Buffer.from(key).equals(KEY_BYTES));
          const token = new Fernet(key).encrypt(data);
          expect(codeOf(() => fernet.decrypt(token))).toBe('fernet_token_invalid');
        },
      ),
    );
  });
});
