import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { Fernet } from './fernet.js';
import { MultiFernet } from './multi.js';

const python = JSON.parse(readFileSync(new URL('./__fixtures__/python.json', import.meta.url), 'utf8')) as {
  rotate: { keys: [string, string]; old: string; rotated: string; timestamp: number; plaintext: string };
};

describe('MultiFernet', () => {
  const newer = new Fernet(Fernet.generateKey());
  const older = Fernet.generateKey();
  const multi = new MultiFernet([newer, older]);
  const NOW = Date.UTC(2024, 5, 1);

  it('encrypts with the first key and decrypts tokens under any key', () => {
    expect(newer.decryptString(multi.encrypt('a'))).toBe('a');
    expect(multi.decryptString(new Fernet(older).encrypt('b'))).toBe('b');
    expect(multi.extractTimestamp(new Fernet(older).encrypt('b', { now: NOW }))).toBe(NOW / 1000);
  });

  it('rejects a token under none of its keys', () => {
    const stranger = new Fernet(Fernet.generateKey()).encrypt('c');
    expect(codeOf(() => multi.decrypt(stranger))).toBe('fernet_token_invalid');
    expect(codeOf(() => multi.rotate(stranger))).toBe('fernet_token_invalid');
    expect(codeOf(() => multi.extractTimestamp(stranger))).toBe('fernet_token_invalid');
  });

  it('reports expiry for a token under an older key', () => {
    const token = new Fernet(older).encrypt('d', { now: NOW });
    expect(codeOf(() => multi.decrypt(token, { ttlSeconds: 5, now: NOW + 6000 }))).toBe(
      'fernet_token_expired',
    );
    expect(multi.decryptString(token, { ttlSeconds: 5, now: NOW + 5000 })).toBe('d');
  });

  it('rotate re-encrypts under the first key with a fresh IV and the original timestamp', () => {
    const token = new Fernet(older).encrypt('e', { now: NOW });
    const rotated = multi.rotate(token);
    expect(newer.decryptString(rotated)).toBe('e');
    expect(newer.extractTimestamp(rotated)).toBe(NOW / 1000);
    expect(multi.rotate(token)).not.toBe(rotated);
    // A TTL still counts from the first encryption, so rotation never extends a token's life.
    expect(codeOf(() => newer.decrypt(rotated, { ttlSeconds: 60, now: NOW + 61_000 }))).toBe(
      'fernet_token_expired',
    );
  });

  it('decrypts a token rotated by Python, and rotates Python tokens the way Python does', () => {
    const [k1, k2] = python.rotate.keys;
    const fromPython = new MultiFernet([k1, k2]);
    expect(new Fernet(k1).decryptString(python.rotate.rotated)).toBe(python.rotate.plaintext);
    expect(codeOf(() => new Fernet(k2).decrypt(python.rotate.rotated))).toBe('fernet_token_invalid');
    const ours = fromPython.rotate(python.rotate.old);
    expect(new Fernet(k1).decryptString(ours)).toBe(python.rotate.plaintext);
    expect(new Fernet(k1).extractTimestamp(ours)).toBe(python.rotate.timestamp);
  });

  it('needs at least one key, and validates them', () => {
    expect(codeOf(() => new MultiFernet([]))).toBe('config_invalid');
    expect(codeOf(() => new MultiFernet(['nope']))).toBe('fernet_key_invalid');
    expect(codeOf(() => multi.decrypt(multi.encrypt('x'), { ttlSeconds: Number.NaN }))).toBe(
      'config_invalid',
    );
  });

  it('shows only key ids', () => {
    const text = `${JSON.stringify(multi)} ${inspect(multi)} ${String(multi)}`;
    expect(text).toContain(newer.keyId);
    expect(text).not.toContain(older.slice(0, 20));
    expect(multi.keyIds).toEqual([newer.keyId, new Fernet(older).keyId]);
  });
});
