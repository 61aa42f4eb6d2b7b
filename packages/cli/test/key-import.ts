import { createHmac, createSecretKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKeyward } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, keyward } from './cli.js';
import type { StoreTarget } from './key-commands.js';

interface ListedKey {
  kid: string;
  alg: string;
  state: string;
  origin: string;
  verifyUntil?: number;
  defaultForKidless?: boolean;
}

const SECRET = 'express-jwt-app-secret-with-40-bytes-ok';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token as the app's previous library signs it (HS256 or ES256, node:crypto only). */
function token(key: KeyObject, alg: 'HS256' | 'ES256', kid?: string): string {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg, typ: 'JWT', ...(kid ? { kid } : {}) })}.${b64({ sub: 'from-old-app', iat: now, exp: now + 300 })}`;
  const signature =
    alg === 'HS256'
      ? createHmac('sha256', key).update(input).digest()
      : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** Checks an ES256 token keyward signed against the original public key; its kid. */
function verifyEs256(jwt: string, publicKey: KeyObject): string {
  const [header, payload, signature] = jwt.split('.') as [string, string, string];
  const ok = verify(
    'sha256',
    Buffer.from(`${header}.${payload}`),
    { key: publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );
  expect(ok).toBe(true);
  return (JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string }).kid;
}

/** `keyward keys import` against one store, through the built binary. */
export function describeKeyImport(name: string, makeTarget: () => StoreTarget): void {
  describe(`keyward keys import (${name})`, () => {
    const target = makeTarget();
    const { dir } = target;
    const run = (args: string[], input?: string) =>
      keyward([...target.args, ...args], input === undefined ? {} : { input });
    const list = async () => JSON.parse((await run(['keys', 'list', '--json'])).stdout) as ListedKey[];
    /** A keyward on the same keyring, as the app would open it. */
    const app = () =>
      createKeyward({
        ...target.keywardOptions,
        masterKey: readFileSync(join(dir, 'master.key'), 'utf8').trim(),
        logger: false,
        audit: false,
        scheduler: false,
        syncIntervalMs: 60_000,
      });

    beforeAll(async () => {
      await buildOnce();
      const init = await run(['init']);
      expect(init.code, init.stderr).toBe(0);
    });
    afterAll(() => target.cleanup());

    it('an HMAC secret verify-only with --default-for-kidless: kid-less tokens of the old app verify; nothing printed of the secret', async () => {
      const file = join(dir, 'jwt-secret');
      writeFileSync(file, `${SECRET}\n`);
      const until = new Date(Date.now() + 7 * 86_400_000).toISOString();
      const result = await run([
        'keys',
        'import',
        '--kid',
        'express-jwt',
        '--alg',
        'HS256',
        '--file',
        file,
        '--verify-only',
        '--verify-until',
        until,
        '--default-for-kidless',
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('express-jwt');
      expect(result.stdout + result.stderr).not.toContain(SECRET);
      const key = (await list()).find((k) => k.kid === 'express-jwt');
      expect(key).toMatchObject({
        alg: 'HS256',
        state: 'retiring',
        origin: 'imported',
        defaultForKidless: true,
        verifyUntil: Date.parse(until),
      });
      expect((await run(['keys', 'list'])).stdout).toMatch(
        /express-jwt\s+sig\s+HS256\s+retiring \(kid-less default\)/,
      );
      const kw = await app();
      try {
        // The trailing newline of the file is not part of the secret.
        expect(kw.jwt.verify(token(createSecretKey(Buffer.from(SECRET)), 'HS256')).kid).toBe('express-jwt');
      } finally {
        await kw.close();
      }
      const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8');
      expect(audit).toContain('"key.imported"');
      expect(audit).not.toContain(SECRET);
      expect(audit).not.toContain(Buffer.from(SECRET).toString('base64url'));
    });

    it('a PKCS#8 private key from stdin as the active key: keyward signs, the original public key verifies; a rotation later moves on', async () => {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      const before = (await list()).find(
        (k) => k.state === 'active' && k.alg !== 'A256GCM' && k.alg !== 'fernet',
      )!;
      const result = await run(
        ['keys', 'import', '--kid', 'app-es256', '--alg', 'ES256', '--file', '-'],
        pem,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('app-es256 (ES256): it is the active signing key');
      expect(result.stdout).toContain(`previous ${before.kid} is retiring`);
      expect(result.stdout + result.stderr).not.toContain(pem.split('\n')[1]!);
      const kw = await app();
      try {
        const signed = kw.jwt.sign({ sub: 'u' });
        expect(verifyEs256(signed, pair.publicKey)).toBe('app-es256');
        expect(kw.jwt.verify(token(pair.privateKey, 'ES256', 'app-es256')).kid).toBe('app-es256');
      } finally {
        await kw.close();
      }
      expect((await run(['keys', 'rotate', '--reason', 'leave the imported key'])).code).toBe(0);
      expect((await list()).find((k) => k.kid === 'app-es256')?.state).toBe('retiring');
    });

    it('a JWKS file verify-only: every key, kids kept', async () => {
      const a = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const jwks = { keys: [{ ...a.publicKey.export({ format: 'jwk' }), kid: 'idp-1', alg: 'RS256' }] };
      const file = join(dir, 'jwks.json');
      writeFileSync(file, JSON.stringify(jwks));
      const result = await run(['keys', 'import', '--file', file, '--verify-only']);
      expect(result.code, result.stderr).toBe(0);
      expect((await list()).find((k) => k.kid === 'idp-1')).toMatchObject({
        alg: 'RS256',
        state: 'retiring',
        origin: 'imported',
      });
    });

    it('refusals are one line with their stable code, and import nothing', async () => {
      const before = await list();
      const ed = generateKeyPairSync('ed25519');
      const privateJwks = join(dir, 'private-jwks.json');
      writeFileSync(
        privateJwks,
        JSON.stringify({ keys: [{ ...ed.privateKey.export({ format: 'jwk' }), kid: 'p' }] }),
      );
      const short = join(dir, 'short-secret');
      writeFileSync(short, 'too-short-secret');
      const badPem = join(dir, 'bad.pem');
      writeFileSync(badPem, '-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n');
      const spki = join(dir, 'ed.pub.pem');
      writeFileSync(spki, ed.publicKey.export({ type: 'spki', format: 'pem' }) as string);
      const secret = join(dir, 'jwt-secret');
      const cases: Array<[string, string[]]> = [
        ['key_import_private', ['--file', privateJwks, '--alg', 'EdDSA', '--verify-only']],
        ['key_too_weak', ['--kid', 'w', '--alg', 'HS256', '--file', short, '--verify-only']],
        ['key_import_malformed', ['--kid', 'm', '--alg', 'EdDSA', '--file', badPem, '--verify-only']],
        ['key_alg_mismatch', ['--kid', 'x', '--alg', 'ES256', '--file', spki, '--verify-only']],
        ['key_public_only', ['--kid', 'y', '--alg', 'EdDSA', '--file', spki]],
        ['key_exists', ['--kid', 'express-jwt', '--alg', 'HS256', '--file', secret, '--verify-only']],
        [
          'kidless_default_exists',
          ['--kid', 'z', '--alg', 'HS256', '--file', secret, '--verify-only', '--default-for-kidless'],
        ],
        [
          'invalid_argument',
          ['--kid', 'z', '--alg', 'HS256', '--file', secret, '--verify-until', '2030-01-01T00:00:00Z'],
        ],
        ['invalid_request', ['--kid', 'has space', '--alg', 'HS256', '--file', secret, '--verify-only']],
      ];
      for (const [code, args] of cases) {
        const result = await run(['keys', 'import', ...args]);
        // Bad usage exits 2, a refused key 1.
        expect(result.code, `${code}: ${result.stderr}`).toBe(code.startsWith('invalid_') ? 2 : 1);
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).toContain(`[${code}]`);
        expect(result.stderr).not.toContain(SECRET);
        expect(result.stderr).not.toContain('too-short-secret');
      }
      expect(await list()).toEqual(before);
    });
  });
}
