import { createPublicKey, createSecretKey, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errors } from 'jose';
import { describe, expect, it } from 'vitest';
import { isKeywardError } from '../errors.js';
import { TestKeyring } from './__fixtures__/keys.js';
import { decryptJwt } from './jwe.js';
import { verifySignature } from './signature.js';
import { createJwtVerifier } from './verify.js';

// Vectors from RFC 7520 (JOSE cookbook), RFC 8037 and RFC 7797, copied from github.com/ietf-jose/cookbook.
interface Vector {
  input: { key: JsonWebKey & { kid?: string; k?: string }; alg: string; payload?: string };
  output: { compact?: string };
}
const vector = (name: string): Vector =>
  JSON.parse(readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8')) as Vector;

function splitCompact(compact: string): { input: string; signature: Buffer; payload: string } {
  const [h, p, s] = compact.split('.') as [string, string, string];
  return {
    input: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
    payload: Buffer.from(p, 'base64url').toString(),
  };
}

describe('JOSE cookbook vectors: signature layer', () => {
  it('verifies RFC 7520 §4.4 HS256 and rejects it under a different secret', () => {
    const v = vector('4_4.hmac-sha2_integrity_protection.json');
    const secret = createSecretKey(Buffer.from(v.input.key.k!, 'base64url'));
    const { input, signature, payload } = splitCompact(v.output.compact!);
    expect(payload).toBe(v.input.payload);
    expect(verifySignature('HS256', secret, input, signature)).toBe(true);
    expect(verifySignature('HS256', createSecretKey(Buffer.alloc(32)), input, signature)).toBe(false);
    expect(verifySignature('HS256', secret, `${input}x`, signature)).toBe(false);
  });

  it('verifies RFC 7520 §4.1 RS256 with the public half of the key', () => {
    const v = vector('4_1.rsa_v15_signature.json');
    const { n, e, kty } = v.input.key;
    const publicKey = createPublicKey({ key: { kty, n, e }, format: 'jwk' });
    const { input, signature } = splitCompact(v.output.compact!);
    expect(verifySignature('RS256', publicKey, input, signature)).toBe(true);
    expect(verifySignature('PS256', publicKey, input, signature)).toBe(false);
  });

  it('verifies RFC 8037 §A.4 EdDSA (Ed25519)', () => {
    const v = vector('curve25519_jws.json');
    const { kty, crv, x } = v.input.key;
    const publicKey = createPublicKey({ key: { kty, crv, x }, format: 'jwk' });
    const { input, signature } = splitCompact(v.output.compact!);
    expect(verifySignature('EdDSA', publicKey, input, signature)).toBe(true);
    signature[0] = signature[0]! ^ 1;
    expect(verifySignature('EdDSA', publicKey, input, signature)).toBe(false);
  });
});

describe('JOSE cookbook vectors: refused by the verifier', () => {
  it('rejects RFC 7520 §4.3 ES512 as unsupported even when the kid is known', () => {
    const v = vector('4_3.ecdsa_signature.json');
    const { kty, crv, x, y } = v.input.key;
    const keys = new TestKeyring();
    keys.keys.set(v.input.key.kid!, {
      kid: v.input.key.kid!,
      alg: 'ES256',
      state: 'active',
      keyObject: createPublicKey({ key: { kty, crv, x, y }, format: 'jwk' }),
      verifyUntil: undefined,
    });
    const verifier = createJwtVerifier({ keys });
    expect(() => verifier.verify(v.output.compact!)).toThrow(
      expect.objectContaining({ code: 'token_invalid', details: { reason: 'alg_unsupported' } }),
    );
  });

  it('rejects RFC 7797 §4.2 "b64": false (re-serialised as compact with the detached payload)', () => {
    const v = vector('4.2.hmac-sha2_b64_false.json') as Vector & {
      output: { json_flat: { protected: string; signature: string } };
    };
    const { protected: header, signature } = v.output.json_flat;
    const keys = new TestKeyring();
    const verifier = createJwtVerifier({ keys });
    const compact = `${header}.${Buffer.from('{"exp":1}').toString('base64url')}.${signature}`;
    // The cookbook header has crit: ["b64"] in the JSON but not in protected_b64u; also test the real one.
    const withCrit = Buffer.from(
      JSON.stringify({ alg: 'HS256', b64: false, crit: ['b64'], kid: 'k' }),
    ).toString('base64url');
    for (const token of [compact, `${withCrit}.${compact.split('.')[1]}.${signature}`]) {
      expect(() => verifier.verify(token)).toThrow(expect.objectContaining({ code: 'token_invalid' }));
    }
  });

  it('rejects RFC 7520 §5.6 dir + A128GCM: keyward decrypts A256GCM only', async () => {
    const v = vector('5_6.direct_encryption_using_aes-gcm.json');
    const key = {
      kid: v.input.key.kid!,
      state: 'active' as const,
      keyObject: createSecretKey(Buffer.from(v.input.key.k!, 'base64url')),
    };
    const err = await decryptJwt(v.output.compact!, () => [key], { requireExp: false }).catch(
      (e: unknown) => e,
    );
    expect(isKeywardError(err, 'token_decrypt_failed')).toBe(true);
    expect((err as Error).cause).toBeInstanceOf(errors.JOSEAlgNotAllowed);
  });
});
