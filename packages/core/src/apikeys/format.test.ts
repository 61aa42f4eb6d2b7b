import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeywardError } from '../errors.js';
import type { KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { makeCore } from './__fixtures__/core.js';
import { API_KEY_PATTERN, apiKeyChecksum, generateApiKey, parseApiKey } from './format.js';
import { type ApiKeyServiceInstance, createApiKeyService } from './service.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const base62Char = fc.constantFrom(...BASE62);

function malformedCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof KeywardError ? err.code : 'not a KeywardError';
  }
}

describe('API key format', () => {
  it('generates keys that parse back and that the published scanner pattern finds in text', () => {
    const { key, id, secret } = generateApiKey();
    expect(parseApiKey(key)).toEqual({ id, secret });
    expect(`token=${key};`.match(API_KEY_PATTERN)?.[0]).toBe(key);
    expect(key).toHaveLength(54);
  });

  it('encodes CRC32 as 6 base62 digits, most significant first', () => {
    // The CRC-32 check value (crc32('123456789') = 0xcbf43926), in base62 as Python computes it.
    expect(apiKeyChecksum('')).toBe('000000');
    expect(apiKeyChecksum('123456789')).toBe('3jZRME');
  });

  it('rejects every single-character substitution', () => {
    fc.assert(
      fc.property(fc.nat(53), base62Char, (position, ch) => {
        const { key } = generateApiKey();
        fc.pre(key[position] !== ch && key[position] !== '_' && position > 2);
        const typo = key.slice(0, position) + ch + key.slice(position + 1);
        expect(malformedCode(() => parseApiKey(typo))).toBe('api_key_malformed');
      }),
    );
  });

  it('rejects every swap of two adjacent different characters', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 52 }), (i) => {
        const { key } = generateApiKey();
        fc.pre(key[i] !== key[i + 1]);
        const swapped = `${key.slice(0, i)}${key[i + 1]}${key[i]}${key.slice(i + 2)}`;
        expect(malformedCode(() => parseApiKey(swapped))).toBe('api_key_malformed');
      }),
    );
  });
});

describe('verify on arbitrary input', () => {
  let core: KeywardCore;
  let apiKeys: ApiKeyServiceInstance;
  beforeAll(async () => {
    core = await makeCore(createMemoryStore());
    apiKeys = await createApiKeyService(core);
  });
  afterAll(() => core.close());

  const API_CODES = ['api_key_malformed', 'api_key_invalid', 'api_key_expired', 'api_key_revoked'];
  const nearKeys = fc
    .tuple(
      fc.string({ unit: base62Char, minLength: 12, maxLength: 12 }),
      fc.string({ unit: base62Char, minLength: 38, maxLength: 38 }),
    )
    .map(([id, rest]) => `kw_${id}_${rest}`);
  const checksummed = fc
    .tuple(
      fc.string({ unit: base62Char, minLength: 12, maxLength: 12 }),
      fc.string({ unit: base62Char, minLength: 32, maxLength: 32 }),
    )
    .map(([id, secret]) => {
      const body = `kw_${id}_${secret}`;
      return body + apiKeyChecksum(body);
    });

  it('never crashes: always a KeywardError with an api_key code', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), nearKeys, checksummed),
        async (input) => {
          const err = await apiKeys.verify(input).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(KeywardError);
          expect(API_CODES).toContain((err as KeywardError).code);
        },
      ),
      { numRuns: 300 },
    );
  });
});
