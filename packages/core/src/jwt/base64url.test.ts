import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64UrlStrict } from './base64url.js';

const STRICT = /^[A-Za-z0-9_-]*$/;

describe('decodeBase64UrlStrict', () => {
  it('agrees with the RFC 7515 §2 grammar on arbitrary strings', () => {
    const alphabet = fc.constantFrom(...'AZaz09-_+/= \n.!é\u0100\u0000');
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 24 }), (s) => {
        const valid = STRICT.test(s) && s.length % 4 !== 1;
        const decoded = decodeBase64UrlStrict(s);
        expect(decoded !== undefined).toBe(valid);
        if (decoded !== undefined)
          expect(decoded.toString('base64url')).toBe(s.length % 4 === 0 ? s : decoded.toString('base64url'));
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(decodeBase64UrlStrict(Buffer.from(bytes).toString('base64url'))).toEqual(Buffer.from(bytes));
      }),
    );
  });
});
