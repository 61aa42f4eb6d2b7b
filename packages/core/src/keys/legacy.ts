import { createHash } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { KeyMaterial } from './generate.js';
import type { KeyRecord } from './types.js';

/** A key derived from the reference system's `JWT_SECRET`. */
export interface LegacyKey {
  record: KeyRecord;
  material: KeyMaterial;
}

/**
 * The kid of a legacy `JWT_SECRET`: the RFC 7638 thumbprint of the secret as an `oct` JWK
 * (`{"k": base64url(utf-8 secret), "kty": "oct"}`), so it is the same on every restart and
 * instance, and any other service can compute it.
 *
 * @example
 * ```ts
 * await legacyKid('my-shared-secret') // same value everywhere, every time
 * ```
 */
export function legacyKid(jwtSecret: string): Promise<string> {
  return calculateJwkThumbprint(
    { kty: 'oct', k: Buffer.from(jwtSecret, 'utf8').toString('base64url') },
    'sha256',
  );
}

/**
 * The HS256 signing key the reference system uses: the secret's utf-8 bytes as the HMAC key.
 * It always verifies; it signs only when `signing` is true (`legacySigning`).
 */
export async function legacySigningKey(
  jwtSecret: string,
  signing: boolean,
  now = Date.now(),
): Promise<LegacyKey> {
  const kid = await legacyKid(jwtSecret);
  const record: KeyRecord = {
    kid,
    use: 'sig',
    alg: 'HS256',
    state: signing ? 'active' : 'retiring',
    origin: 'legacy',
    createdAt: now,
    notes: 'derived from JWT_SECRET',
  };
  if (signing) record.activatedAt = now;
  return { record, material: { kty: 'oct', k: Buffer.from(jwtSecret, 'utf8').toString('base64url') } };
}

/**
 * The JWE key the reference system uses: `dir` + `A256GCM` with the key sha256(utf-8 JWT_SECRET).
 * Decrypt-only in keyward.
 */
export async function legacyEncryptionKey(jwtSecret: string, now = Date.now()): Promise<LegacyKey> {
  const kid = `${await legacyKid(jwtSecret)}.enc`;
  const k = createHash('sha256').update(jwtSecret, 'utf8').digest('base64url');
  return {
    record: {
      kid,
      use: 'enc',
      alg: 'A256GCM',
      state: 'retiring',
      origin: 'legacy',
      createdAt: now,
      notes: 'sha256(JWT_SECRET)',
    },
    material: { kty: 'oct', k },
  };
}

/**
 * The Fernet data key the reference system derives: base64url(sha256(utf-8 JWT_SECRET)), so data
 * it encrypted stays readable. Decrypt-only in keyward (new data goes under generated data keys).
 */
export async function legacyDataKey(jwtSecret: string, now = Date.now()): Promise<LegacyKey> {
  const kid = `${await legacyKid(jwtSecret)}.data`;
  const k = createHash('sha256').update(jwtSecret, 'utf8').digest('base64url');
  return {
    record: {
      kid,
      use: 'data',
      alg: 'fernet',
      state: 'retiring',
      origin: 'legacy',
      createdAt: now,
      notes: 'base64url(sha256(JWT_SECRET))',
    },
    material: { kty: 'oct', k },
  };
}
