/**
 * Key import across processes on a real Redis: a key imported on one instance (one compare-and-set of
 * the keyring document) verifies on the others after sync, kid-less tokens included; an active import
 * signs on the importer and the others verify its tokens; two instances importing one kid at once make
 * one key (the other gets `key_exists`).
 */
import { createSecretKey, generateKeyPairSync } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { afterAll, afterEach, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { MasterKey } from '../../src/keys/master-key.js';
import type { KeyRecord } from '../../src/keys/types.js';
import { type App, codeOf, eventually, startApp } from './harness.js';

const MASTER = MasterKey.generate().exportText();
const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const prefix = `{${uniquePrefix('import-mp')}}:`;
const SECRET = 'an-express-jwt-secret-of-more-than-32-bytes';
const apps: App[] = [];

async function start(count: number): Promise<App[]> {
  const started: App[] = [];
  while (started.length < count) {
    const app = await startApp({ KW_MASTER: MASTER, KW_SYNC_MS: '300', REDIS_URL: url, KW_PREFIX: prefix });
    apps.push(app);
    started.push(app);
  }
  return started;
}

async function kidless(secret: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'old-app-user' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(createSecretKey(Buffer.from(secret, 'utf8')));
}

describeWithRedis('key import across processes (Redis)', () => {
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await dropRedisPrefix(url, prefix);
  });

  it('verify-only HMAC default for kid-less tokens on A; B verifies them after sync; an active import on A signs, B verifies', async () => {
    const [a, b] = await start(2);
    const token = await kidless(SECRET);
    expect(await codeOf(b!.call('verify', { token }))).toBe('token_invalid');
    await a!.call('importKey', {
      options: {
        kid: 'express-jwt',
        alg: 'HS256',
        key: SECRET,
        state: 'verify-only',
        defaultForKidless: true,
      },
    });
    expect(await a!.call('verify', { token })).toBe('express-jwt');
    await eventually(async () => (await b!.call('verify', { token })) === 'express-jwt');

    const pair = generateKeyPairSync('ed25519');
    const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await a!.call('importKey', { options: { kid: 'brought-ed', alg: 'EdDSA', key: pem, state: 'active' } });
    const signed = await a!.call<string>('sign');
    expect((await jwtVerify(signed, pair.publicKey)).protectedHeader.kid).toBe('brought-ed');
    await eventually(async () => (await b!.call('verify', { token: signed })) === 'brought-ed');
    // B signs with it too once synced, and the keyring B holds lists one active sig key.
    await eventually(async () => {
      const keys = await b!.call<KeyRecord[]>('keys');
      return (
        keys
          .filter((k) => k.use === 'sig' && k.state === 'active')
          .map((k) => k.kid)
          .join() === 'brought-ed'
      );
    });
    const fromB = await b!.call<string>('sign');
    expect((await jwtVerify(fromB, pair.publicKey)).protectedHeader.kid).toBe('brought-ed');
  });

  it('two instances importing the same kid at once: one key, the other call gets key_exists', async () => {
    const [a, b] = await start(2);
    const options = { kid: 'raced', alg: 'HS256', key: SECRET, state: 'verify-only' };
    const results = await Promise.all([
      codeOf(a!.call('importKey', { options })),
      codeOf(b!.call('importKey', { options })),
    ]);
    expect(results.sort()).toEqual([undefined, 'key_exists'].sort());
    await a!.call('refresh'); // the winner may be the other process: read the store now
    const keys = await a!.call<KeyRecord[]>('keys');
    expect(keys.filter((k) => k.kid === 'raced')).toHaveLength(1);
  });
});
