import {
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, generateSecret, type JWK } from 'jose';
import { KeywardError } from '../errors.js';
import { assertAlgorithmForUse, isSymmetric } from './algorithms.js';
import type { KeyAlgorithm, KeyRecord, KeyState, KeyUse } from './types.js';

/** Key material as a private JWK (asymmetric) or an `oct` JWK (symmetric, Fernet included). */
export type KeyMaterial = JWK;

/** A freshly generated key: its record and its material (seal it before storing). */
export interface GeneratedKey {
  record: KeyRecord;
  material: KeyMaterial;
}

/** Options of {@link generateKey}. */
export interface GenerateKeyOptions {
  use: KeyUse;
  alg: KeyAlgorithm;
  state?: KeyState;
  now?: number;
  notes?: string;
}

/** The public part of an asymmetric private JWK. */
export function publicJwk(material: KeyMaterial): JWK {
  const { kty, crv, x, y, n, e } = material;
  const pub: JWK = { kty };
  if (crv !== undefined) pub.crv = crv;
  if (x !== undefined) pub.x = x;
  if (y !== undefined) pub.y = y;
  if (n !== undefined) pub.n = n;
  if (e !== undefined) pub.e = e;
  return pub;
}

async function generateMaterial(alg: KeyAlgorithm): Promise<KeyMaterial> {
  switch (alg) {
    case 'EdDSA':
    case 'Ed25519':
      return exportJWK((await generateKeyPair('Ed25519', { extractable: true })).privateKey);
    case 'ES256':
    case 'RS256':
    case 'PS256':
      return exportJWK((await generateKeyPair(alg, { extractable: true, modulusLength: 2048 })).privateKey);
    case 'HS256':
    case 'HS384':
    case 'HS512':
    case 'A256GCM':
      return exportJWK(await generateSecret(alg, { extractable: true }));
    case 'fernet':
      // Fernet keys are 32 random bytes (16 signing + 16 encryption); jose has no Fernet.
      return { kty: 'oct', k: randomBytes(32).toString('base64url') };
    default:
      throw new KeywardError('alg_unsupported', `cannot generate a key for algorithm ${String(alg)}`);
  }
}

/**
 * Computes the kid: the RFC 7638 thumbprint of the public key for asymmetric keys; a random id
 * for generated symmetric keys (a hash of a secret is not published where it need not be).
 */
export async function kidFor(alg: KeyAlgorithm, material: KeyMaterial): Promise<string> {
  if (!isSymmetric(alg)) return calculateJwkThumbprint(publicJwk(material), 'sha256');
  return randomBytes(16).toString('base64url');
}

/**
 * Generates a key through jose (Fernet keys from `node:crypto`): EdDSA (Ed25519), ES256, RS256 and
 * PS256 (2048-bit), HS256/384/512, A256GCM, or a Fernet data key.
 *
 * @example
 * ```ts
 * const { record, material } = await generateKey({ use: 'sig', alg: 'EdDSA', state: 'active' })
 * ```
 */
export async function generateKey(options: GenerateKeyOptions): Promise<GeneratedKey> {
  assertAlgorithmForUse(options.use, options.alg);
  const material = await generateMaterial(options.alg);
  const now = options.now ?? Date.now();
  const state = options.state ?? 'pending';
  const record: KeyRecord = {
    kid: await kidFor(options.alg, material),
    use: options.use,
    alg: options.alg,
    state,
    origin: 'generated',
    createdAt: now,
  };
  if (state === 'active') record.activatedAt = now;
  if (options.notes) record.notes = options.notes;
  return { record, material };
}

/** node:crypto KeyObjects for a key's material. */
export interface KeyObjects {
  /** Private key (asymmetric) or secret key (symmetric). */
  secret: KeyObject;
  /** Public key (asymmetric) or the same secret key (symmetric). */
  verify: KeyObject;
}

/**
 * Turns key material into node:crypto KeyObjects. Public-only asymmetric material (a verify-only
 * imported key) gives the public KeyObject as both: it is never used to sign.
 */
export function keyObjectsFor(alg: KeyAlgorithm, material: KeyMaterial): KeyObjects {
  if (isSymmetric(alg)) {
    if (typeof material.k !== 'string')
      throw new KeywardError('key_unseal_failed', 'symmetric key material has no k');
    const secret = createSecretKey(Buffer.from(material.k, 'base64url'));
    return { secret, verify: secret };
  }
  // A verify-only imported key may be stored as its public part alone: it never signs.
  if (material.d === undefined) {
    const verify = createPublicKey({ key: material as JsonWebKey, format: 'jwk' });
    return { secret: verify, verify };
  }
  const secret = createPrivateKey({ key: material as JsonWebKey, format: 'jwk' });
  return { secret, verify: createPublicKey(secret) };
}
