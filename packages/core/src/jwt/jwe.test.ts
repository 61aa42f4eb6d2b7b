import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { EncryptJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { EncryptionKey } from '../keys/types.js';
import { decryptJwt, encryptJwt } from './jwe.js';

const NOW = 1_700_000_000_000;
const now = () => NOW;
const encKey = (
  kid: string,
  state: EncryptionKey['state'] = 'active',
  bytes = randomBytes(32),
): EncryptionKey => ({
  kid,
  state,
  keyObject: createSecretKey(bytes),
});

describe('encryptJwt / decryptJwt', () => {
  it('round-trips claims with iat and exp, kid in the protected header', async () => {
    const key = encKey('enc-1');
    const token = await encryptJwt(key, { sub: 'u1', email: 'a@example.com' }, { expiresInSec: 900, now });
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as object;
    expect(header).toEqual({ alg: 'dir', enc: 'A256GCM', kid: 'enc-1' });
    const claims = await decryptJwt(token, (kid) => (kid === 'enc-1' ? [key] : []), { now });
    expect(claims).toEqual({ sub: 'u1', email: 'a@example.com', iat: NOW / 1000, exp: NOW / 1000 + 900 });
  });

  it('decrypts a token made the reference way: jose, dir + A256GCM, key = sha256(JWT_SECRET)', async () => {
    const secret = 'correct horse battery staple';
    const raw = createHash('sha256').update(secret, 'utf8').digest();
    const token = await new EncryptJWT({ sub: 'legacy-user', exp: NOW / 1000 + 60 })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'legacy' })
      .encrypt(new Uint8Array(raw));
    const legacy = encKey('legacy', 'active', raw);
    expect((await decryptJwt(token, () => [legacy], { now })).sub).toBe('legacy-user');
  });

  it('tries each candidate key and fails with token_decrypt_failed when none fits', async () => {
    const right = encKey('k');
    const token = await encryptJwt(right, { sub: 'u' }, { expiresInSec: 60, now });
    expect((await decryptJwt(token, () => [encKey('k'), right], { now })).sub).toBe('u');
    expect(await codeOf(decryptJwt(token, () => [encKey('k')], { now }))).toBe('token_decrypt_failed');
    expect(await codeOf(decryptJwt(token, () => [], { now }))).toBe('token_decrypt_failed');
  });

  it('maps expiry, missing exp, revoked keys, garbage and size to stable codes', async () => {
    const key = encKey('k');
    const lookup = () => [key];
    const expired = await encryptJwt(key, { sub: 'u' }, { expiresInSec: 10, now });
    expect(await codeOf(decryptJwt(expired, lookup, { now: () => NOW + 71_000 }))).toBe('token_expired');
    const noExp = await encryptJwt(key, { sub: 'u' }, { now });
    expect(await codeOf(decryptJwt(noExp, lookup, { now }))).toBe('token_claim_invalid');
    expect((await decryptJwt(noExp, lookup, { now, requireExp: false })).sub).toBe('u');
    const future = await encryptJwt(key, { sub: 'u', nbf: NOW / 1000 + 600 }, { expiresInSec: 900, now });
    expect(await codeOf(decryptJwt(future, lookup, { now }))).toBe('token_not_yet_valid');
    expect(await codeOf(decryptJwt(noExp, () => [{ ...key, state: 'revoked' }], { now }))).toBe(
      'key_revoked',
    );
    expect(await codeOf(decryptJwt('not.a.jwe', lookup, { now }))).toBe('token_malformed');
    expect(await codeOf(decryptJwt('x'.repeat(20_000), lookup, { now }))).toBe('token_too_large');
    const [h, , iv, ct, tag] = noExp.split('.');
    const err = await decryptJwt(`${h}..${iv}.${ct}.${tag!.slice(0, -2)}AA`, lookup, { now }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'token_decrypt_failed' });
    expect((err as Error).cause).toBeDefined();
    expect((err as Error).message).not.toContain(ct!.slice(0, 16));
  });

  it('checks issuer and audience when configured', async () => {
    const key = encKey('k');
    const token = await encryptJwt(key, { iss: 'https://a.example', aud: 'api' }, { expiresInSec: 60, now });
    expect(
      await codeOf(decryptJwt(token, () => [key], { now, issuer: 'https://a.example', audience: 'api' })),
    ).toBe(undefined);
    expect(await codeOf(decryptJwt(token, () => [key], { now, audience: 'other' }))).toBe(
      'token_claim_invalid',
    );
  });
});
