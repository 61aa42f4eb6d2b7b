import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { Fernet } from './fernet.js';
import { decodeLegacySecretValue, encodeLegacySecretValue, legacyFernetKey } from './legacy.js';

const { legacy } = JSON.parse(
  readFileSync(new URL('./__fixtures__/python.json', import.meta.url), 'utf8'),
) as {
  legacy: {
    jwtSecret: string;
    fernetKey: string;
    stored: string;
    token: string;
    plaintext: string;
    ivHex: string;
    now: number;
  };
};

describe('legacy secrets (Python-made fixture)', () => {
  it('derives the same Fernet key from JWT_SECRET as the reference system', () => {
    expect(legacyFernetKey(legacy.jwtSecret)).toBe(legacy.fernetKey);
  });

  it('reads a stored secret: standard base64 around a Fernet token', () => {
    const token = decodeLegacySecretValue(legacy.stored);
    expect(token).toBe(legacy.token);
    expect(new Fernet(legacyFernetKey(legacy.jwtSecret)).decryptString(token)).toBe(legacy.plaintext);
  });

  it('writes a stored secret byte for byte as the reference system does', () => {
    const fernet = new Fernet(legacyFernetKey(legacy.jwtSecret));
    const token = fernet.encrypt(legacy.plaintext, {
      now: legacy.now * 1000,
      iv: Buffer.from(legacy.ivHex, 'hex'),
    });
    expect(encodeLegacySecretValue(token)).toBe(legacy.stored);
  });

  it('rejects stored values that are not a wrapped token', () => {
    for (const bad of ['', 'not base64!', Buffer.from('{"a":1}').toString('base64'), legacy.token]) {
      expect(codeOf(() => decodeLegacySecretValue(bad))).toBe('fernet_token_invalid');
    }
    expect(codeOf(() => encodeLegacySecretValue('has spaces'))).toBe('fernet_token_invalid');
    expect(codeOf(() => legacyFernetKey(''))).toBe('config_invalid');
  });
});
