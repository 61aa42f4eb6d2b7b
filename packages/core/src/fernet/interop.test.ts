import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { hasTool, python as pythonBin } from '../../../testing/src/tools.js';
import { isKeywardError } from '../errors.js';
import { Fernet } from './fernet.js';

interface PythonCase {
  name: string;
  key: string;
  ivHex: string;
  now: number;
  token: string;
  sha256: string;
  plaintextHex?: string;
}
const python = JSON.parse(readFileSync(new URL('./__fixtures__/python.json', import.meta.url), 'utf8')) as {
  cases: PythonCase[];
  ttl: { key: string; token: string; cases: { ttl: number; now: number; ok: boolean }[] };
};

const bigPayload = () => Uint8Array.from({ length: 100 * 1024 }, (_, i) => (i * 31 + 7) % 256);
const plaintextOf = (c: PythonCase) =>
  c.plaintextHex === undefined ? bigPayload() : Buffer.from(c.plaintextHex, 'hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('interop with Python cryptography.fernet (committed fixture)', () => {
  it.each(python.cases)('decrypts the $name token Python made', (c) => {
    expect(sha256(new Fernet(c.key).decrypt(c.token))).toBe(c.sha256);
  });

  it.each(python.cases)('reproduces the $name token byte for byte with the same key, IV and time', (c) => {
    const token = new Fernet(c.key).encrypt(plaintextOf(c), {
      now: c.now * 1000,
      iv: Buffer.from(c.ivHex, 'hex'),
    });
    expect(token).toBe(c.token);
  });

  it('judges TTL and clock skew exactly as decrypt_at_time does', () => {
    const fernet = new Fernet(python.ttl.key);
    for (const { ttl, now, ok } of python.ttl.cases) {
      let accepted = true;
      try {
        fernet.decrypt(python.ttl.token, { ttlSeconds: ttl, now: now * 1000 });
      } catch (err) {
        if (!isKeywardError(err, 'fernet_token_expired', 'fernet_token_invalid')) throw err;
        accepted = false;
      }
      expect({ ttl, now, accepted }).toEqual({ ttl, now, accepted: ok });
    }
  });
});

const hasPython = hasTool('python-cryptography');

describe.runIf(hasPython)('interop with Python cryptography.fernet (live, random IVs)', () => {
  it('Python decrypts tokens we make now', () => {
    const key = Fernet.generateKey();
    const fernet = new Fernet(key);
    const plaintexts = ['', 'hello', 'clé 🔑', 'x'.repeat(5000)];
    const tokens = plaintexts.map((p) => fernet.encrypt(p));
    const script = [
      'import json, sys',
      'from cryptography.fernet import Fernet',
      'job = json.load(sys.stdin)',
      'f = Fernet(job["key"])',
      'print(json.dumps([f.decrypt(t, ttl=60).decode() for t in job["tokens"]]))',
    ].join('\n');
    const run = spawnSync(pythonBin, ['-c', script], {
      input: JSON.stringify({ key, tokens }),
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual(plaintexts);
  });
});

interface NpmFernet {
  Secret: new (key: string) => unknown;
  Token: new (options: {
    secret: unknown;
    token?: string;
    ttl?: number;
    time?: string;
    iv?: number[];
  }) => {
    encode(message: string): string;
    decode(): string;
  };
}
const npm = createRequire(import.meta.url)('fernet') as NpmFernet;

describe('interop with the npm `fernet` package', () => {
  const key = Fernet.generateKey();
  const fernet = new Fernet(key);
  const secret = new npm.Secret(key);
  const messages = ['hello', 'clé 🔑 ключ', 'a'.repeat(1000), '0123456789abcdef'];

  it.each(messages)('we decrypt its token for %#', (message) => {
    const token = new npm.Token({ secret, ttl: 0 }).encode(message);
    expect(fernet.decryptString(token, { ttlSeconds: 60 })).toBe(message);
  });

  it.each(messages)('it decrypts our token for %#', (message) => {
    expect(new npm.Token({ secret, token: fernet.encrypt(message), ttl: 0 }).decode()).toBe(message);
  });

  it('it makes the same token as we do for a fixed IV and time', () => {
    // Its `ArrayToHex` walks array indices, not values, so only the IV 0, 1, …, 15 survives intact.
    const iv = Array.from({ length: 16 }, (_, i) => i);
    const now = Date.UTC(2024, 0, 2, 3, 4, 5);
    const theirs = new npm.Token({ secret, time: new Date(now).toISOString(), iv }).encode('fixed');
    expect(fernet.encrypt('fixed', { now, iv: Uint8Array.from(iv) })).toBe(theirs);
  });
});
